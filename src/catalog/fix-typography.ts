import { Composer, CST, isScalar, Parser, type Scalar } from 'yaml';
import { textScalars } from './editorial.js';
import { fixTypography } from './typography.js';

/**
 * Rewrites the learner-facing string values of a YAML text in the house style (typography.ts), and
 * nothing else: the edit is made on the concrete syntax tree (`CST.setScalarValue`), so keys, comments,
 * blank lines, quoting style and the layout of every untouched value stay byte for byte.
 */
export function fixYamlTypography(
  text: string,
): { ok: true; text: string; changed: number } | { ok: false; error: string } {
  const tokens = [...new Parser().parse(text)];
  const docs = [...new Composer({ keepSourceTokens: true }).compose(tokens)];
  const errors = docs.flatMap((d) => d.errors);
  if (errors.length > 0) return { ok: false, error: `YAML syntax: ${errors[0]?.message.split('\n')[0]}` };
  let changed = 0;
  for (const doc of docs) {
    for (const t of textScalars(doc.contents)) {
      const value = String(t.scalar.value);
      const fixed = fixTypography(value);
      if (fixed === value) continue;
      const token = (t.scalar as Scalar & { srcToken?: CST.Token }).srcToken;
      if (!token || !isScalar(t.scalar)) continue;
      if (token.type === 'block-scalar') {
        // The rules never cross a line: fix each line of the raw block after its indentation.
        token.source = token.source
          .split('\n')
          .map((line) => {
            const indent = /^[ \t]*/.exec(line)?.[0] ?? '';
            return indent + fixTypography(line.slice(indent.length));
          })
          .join('\n');
      } else CST.setScalarValue(token, fixed, { afterKey: true });
      changed++;
    }
  }
  return { ok: true, text: tokens.map((t) => CST.stringify(t)).join(''), changed };
}
