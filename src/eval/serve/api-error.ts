/** Errors the server answers with, in OpenAI's body layout: {"error": {"message", "type", "param", "code"}}. */

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'server_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType = 'invalid_request_error',
    /** The request field at fault (dotted path, e.g. "messages.0.content"), when there is one. */
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): { error: { message: string; type: ApiErrorType; param: string | null; code: number } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.status } };
  }
}

/** A 400 naming the field: "temperature: expected a number >= 0, got -1". */
export function badField(param: string, message: string): ApiError {
  return new ApiError(400, `${param}: ${message}`, 'invalid_request_error', param);
}
