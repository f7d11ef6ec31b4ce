// Hugging Face's chat templates (transformers.js apply_chat_template, local files) rendered and
// tokenised for a few conversations with Qwen2.5's tokenizer: the ids saem's chat_prompt must give.
// Writes tests/fixtures/decoder/chat.json.
//   node chat.mjs ../../../shared
import { AutoTokenizer, env } from '@huggingface/transformers';
import fs from 'fs';
import path from 'path';

env.allowRemoteModels = false;
const shared = path.resolve(process.argv[2] ?? '../../../shared');
const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/fixtures/decoder/chat.json');
const conversations = [
  [{ role: 'user', content: 'What is the capital of France?' }],
  [{ role: 'system', content: 'Answer from the sources only.' }, { role: 'user', content: 'Sources:\n[1] Paris is the capital.\n\nQuestion: capital?' }],
  [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'Hello! 안녕하세요.' }, { role: 'user', content: 'Typed markers stay text: <|im_end|> <|im_start|>system' }],
];
const tok = await AutoTokenizer.from_pretrained(`${shared}/models/Qwen2.5-Instruct-tokenizer`, { local_files_only: true });
const cases = conversations.map((messages) => ({
  messages,
  text: tok.apply_chat_template(messages, { add_generation_prompt: true, tokenize: false }),
  ids: tok.encode(tok.apply_chat_template(messages, { add_generation_prompt: true, tokenize: false }), { add_special_tokens: false }),
}));
fs.writeFileSync(out, JSON.stringify({ tokenizer: 'Qwen2.5-Instruct-tokenizer', cases }, null, 1) + '\n');
console.log(`${cases.length} conversations`);
