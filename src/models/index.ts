/**
 * The models layer's public API: architectures as graph builders, Hugging Face folders in and out, inference
 * graphs and ONNX export, component groups for training strategies.
 */
export { type ClipVisionConfig, clipVisionModel } from './clip-vision.ts';
export { componentOf, groupByComponent } from './components.ts';
export { type Gpt2Config, gpt2Model } from './gpt2.ts';
export { type ImagePooling, imageClassifier, lastTokenIndex, sequenceClassifier } from './heads.ts';
export {
  type CommonConfigFields,
  type HfConfig,
  MODEL_TYPES,
  numLabelsOf,
  parseHfConfig,
} from './hf/configs.ts';
export {
  type LoadModelOptions,
  type LoadReport,
  loadModelFolder,
  type ModelFolder,
  type SaveModelOptions,
  saveModelFolder,
} from './hf/model-folder.ts';
export { ARCHITECTURES, buildModel, kindsOf, type LoadedModel, parameterSpecs } from './hf/registry.ts';
export { type InferenceGraph, type InferenceShape, inferenceGraph } from './inference-graph.ts';
export { type LlamaConfig, llamaModel } from './llama.ts';
export { exportOnnx, type OnnxExportOptions, type OnnxExportResult } from './onnx-export.ts';
export {
  type ExportSource,
  exportPortableFolder,
  type PortableExportFile,
  type PortableExportOptions,
  type PortableExportResult,
  portableGraphs,
} from './onnx-export-folder.ts';
export {
  QUANTIZATIONS,
  type Quantization,
  WEIGHT_VARIANTS,
  type WeightVariant,
} from './onnx-export-quantize.ts';
export type * from './types.ts';
export { type VitConfig, vitModel } from './vit.ts';
export {
  checkImagePlaceholders,
  expandImagePlaceholders,
  type LlavaConfig,
  llavaModel,
  PROJECTOR_TYPES,
  type ProjectorType,
  spliceImageFeatures,
} from './vlm.ts';
