// Chat templates that take `tools`, written for the tests in the shape of two families (not copies of
// the real files): Llama 3.1 (tools in a system turn, a call as {"name", "parameters"}, results in
// an `ipython` turn) and Hermes / Qwen 2.5 (tools inside <tools>, calls inside <tool_call> tags,
// results inside <tool_response>). Each renders exactly what the tests look for.

/** Llama 3.1 style: `arguments | tojson` (the template expects arguments as an object). */
export const LLAMA31_TOOLS_TEMPLATE = [
  '{{- bos_token }}',
  '{%- if tools is defined and tools is not none %}',
  '{{- "<|start_header_id|>system<|end_header_id|>\\n\\nYou can call these functions. To call one, reply with only {\\"name\\": <function name>, \\"parameters\\": <arguments object>}.\\n" }}',
  '{%- for t in tools %}{{- t | tojson }}{{- "\\n" }}{%- endfor %}',
  '{{- "<|eot_id|>" }}',
  '{%- endif %}',
  '{%- for message in messages %}',
  '{%- if message.role == "assistant" and message.tool_calls is defined and message.tool_calls %}',
  '{%- set call = message.tool_calls[0].function %}',
  '{{- "<|start_header_id|>assistant<|end_header_id|>\\n\\n" }}{{- \'{"name": "\' + call.name + \'", "parameters": \' }}{{- call.arguments | tojson }}{{- "}<|eot_id|>" }}',
  '{%- elif message.role == "tool" %}',
  '{{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" + message.content + "<|eot_id|>" }}',
  '{%- else %}',
  '{{- "<|start_header_id|>" + message.role + "<|end_header_id|>\\n\\n" + (message.content | trim) + "<|eot_id|>" }}',
  '{%- endif %}',
  '{%- endfor %}',
  '{%- if add_generation_prompt %}{{- "<|start_header_id|>assistant<|end_header_id|>\\n\\n" }}{%- endif %}',
].join('\n');

/** Hermes / Qwen 2.5 style: each call of an assistant turn in its own <tool_call> block. */
export const HERMES_TOOLS_TEMPLATE = [
  '{%- if tools %}',
  '{{- "<|im_start|>system\\n" }}{%- if messages[0].role == "system" %}{{- messages[0].content + "\\n\\n" }}{%- endif %}',
  '{{- "# Tools\\n<tools>" }}{%- for t in tools %}{{- "\\n" }}{{- t | tojson }}{%- endfor %}',
  '{{- "\\n</tools>\\nFor each call, write <tool_call>\\n{\\"name\\": <function name>, \\"arguments\\": <arguments object>}\\n</tool_call><|im_end|>\\n" }}',
  '{%- elif messages[0].role == "system" %}',
  '{{- "<|im_start|>system\\n" + messages[0].content + "<|im_end|>\\n" }}',
  '{%- endif %}',
  '{%- for message in messages %}',
  '{%- if message.role == "system" %}',
  '{%- elif message.role == "assistant" %}',
  '{{- "<|im_start|>assistant" }}{%- if message.content %}{{- "\\n" + message.content }}{%- endif %}',
  '{%- if message.tool_calls is defined and message.tool_calls %}{%- for tc in message.tool_calls %}',
  '{{- "\\n<tool_call>\\n{\\"name\\": \\"" + tc.function.name + "\\", \\"arguments\\": " }}{{- tc.function.arguments | tojson }}{{- "}\\n</tool_call>" }}',
  '{%- endfor %}{%- endif %}',
  '{{- "<|im_end|>\\n" }}',
  '{%- elif message.role == "tool" %}',
  '{{- "<|im_start|>user\\n<tool_response>\\n" + message.content + "\\n</tool_response><|im_end|>\\n" }}',
  '{%- else %}',
  '{{- "<|im_start|>" + message.role + "\\n" + message.content + "<|im_end|>\\n" }}',
  '{%- endif %}',
  '{%- endfor %}',
  '{%- if add_generation_prompt %}{{- "<|im_start|>assistant\\n" }}{%- endif %}',
].join('\n');

/** Takes tools, in a call format not recognised (a made-up one). */
export const OTHER_TOOLS_TEMPLATE =
  '{%- if tools %}{{ "Functions: " + (tools | tojson) + "\\n" }}{%- endif %}' +
  '{%- for message in messages %}{{ message.role + ": " + message.content + "\\n" }}{%- endfor %}' +
  '{%- if add_generation_prompt %}{{ "assistant: " }}{%- endif %}';
