/**
 * YAML as Python's loaders read it: torchtune (OmegaConf) and TRL (PyYAML's safe_load) parse YAML 1.1, where an
 * unquoted `no` / `on` / `yes` is a boolean and `5e-7` (no dot) is a string. Strings are quoted where 1.1 would
 * misread them, and floats in exponent form get a decimal point (5.0e-7).
 */
import YAML from 'yaml';

export function pythonYaml(value: unknown): string {
  return YAML.stringify(value, { version: '1.1', nullStr: 'null' }).replace(
    /^(\s*(?:- |[^\n:#]+: ))(-?\d+)([eE][-+]?\d+)$/gm,
    '$1$2.0$3',
  );
}
