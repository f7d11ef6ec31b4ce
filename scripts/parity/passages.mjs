// The passage sets the parity fixtures are computed over. tests/parity.h builds the same strings
// from the same files; both sides must agree byte for byte.
import fs from 'fs';

const oneLine = (s) => s.replace(/[\r\n]/g, ' ');

export function scifact(shared) {
  return fs.readFileSync(`${shared}/data/scifact/corpus.jsonl`, 'utf8').split('\n').filter((l) => l.length)
    .map((l) => JSON.parse(l)).map((d) => oneLine(`${d.title} ${d.text}`));
}

export function squad(shared) {
  const out = [];
  for (const article of JSON.parse(fs.readFileSync(`${shared}/data/squad_v1.1/dev-v1.1.json`, 'utf8')).data)
    for (const p of article.paragraphs) out.push(oneLine(p.context));
  return out;
}

// One passage per line, already flattened (made by bench/korean-passages from Debian's Korean
// documentation; not committed).
export function lines(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length);
}

// FNV-1a 32 over the ids written as "1,2,3": a fingerprint of one passage's tokenization.
export function fingerprint(ids) {
  const s = ids.join(',');
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
