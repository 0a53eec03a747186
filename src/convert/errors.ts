// The error class of the converter: bad checkpoints, configs, tokenizers and options. Its message
// is what the user sees (`wf convert: error: <message>`), so it names the file / tensor / key at fault.

export class ConvertError extends Error {
  override name = 'ConvertError';
}
