/**
 * The little YAML the manifests in docs/cluster/ are written in, read without a YAML dependency:
 * `---`-separated documents of block maps and block sequences (`- ` items, maps inside them),
 * comments, and scalars: plain, "double" or 'single' quoted, numbers, true/false/null, and flow
 * sequences written as JSON arrays. Anything else throws, so a manifest that outgrows the subset
 * fails its test instead of being misread.
 */

interface Line {
  indent: number;
  text: string;
  number: number;
}

function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

function scalar(text: string, line: number): unknown {
  const t = text.trim();
  if (t.startsWith('"')) return JSON.parse(t);
  if (t.startsWith("'")) {
    if (!t.endsWith("'") || t.length < 2) throw new Error(`line ${line}: unterminated quote`);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t.startsWith('[')) return JSON.parse(t);
  if (t.startsWith('{') || t.startsWith('|') || t.startsWith('>') || t.startsWith('&') || t.startsWith('*')) {
    throw new Error(`line ${line}: ${JSON.stringify(t)} is outside the YAML subset`);
  }
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (t === 'true' || t === 'false') return t === 'true';
  if (t === 'null' || t === '~' || t === '') return null;
  return t;
}

class Parser {
  private i = 0;
  constructor(private readonly lines: Line[]) {}

  parse(): unknown {
    const value = this.block(this.lines[0]?.indent ?? 0);
    if (this.i < this.lines.length) throw new Error(`line ${this.lines[this.i].number}: unexpected indentation`);
    return value;
  }

  private block(indent: number): unknown {
    const first = this.lines[this.i];
    if (!first || first.indent !== indent) return null;
    return first.text.startsWith('- ') || first.text === '-' ? this.sequence(indent) : this.map(indent);
  }

  private sequence(indent: number): unknown[] {
    const items: unknown[] = [];
    while (this.i < this.lines.length && this.lines[this.i].indent === indent && /^-( |$)/.test(this.lines[this.i].text)) {
      const line = this.lines[this.i];
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        this.i++;
        items.push(this.block(this.lines[this.i]?.indent ?? indent));
      } else if (/^[^"'[][^:]*:( |$)/.test(rest)) {
        // "- key: value": a map whose first entry sits on the dash's line, the rest under it.
        const inner = indent + (line.text.length - rest.length);
        this.lines[this.i] = { ...line, indent: inner, text: rest };
        items.push(this.map(inner));
      } else {
        this.i++;
        items.push(scalar(rest, line.number));
      }
    }
    return items;
  }

  private map(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.i < this.lines.length && this.lines[this.i].indent === indent) {
      const line = this.lines[this.i];
      const m = /^([A-Za-z0-9_.\-/]+):(?: (.*))?$/.exec(line.text);
      if (!m) throw new Error(`line ${line.number}: expected "key: value", got ${JSON.stringify(line.text)}`);
      this.i++;
      const [, key, rest] = m;
      if (rest !== undefined && rest.trim() !== '') {
        out[key] = scalar(rest, line.number);
        continue;
      }
      const next = this.lines[this.i];
      if (next && next.indent > indent) out[key] = this.block(next.indent);
      else if (next && next.indent === indent && /^-( |$)/.test(next.text)) out[key] = this.sequence(indent);
      else out[key] = null;
    }
    return out;
  }
}

/** Every document of a YAML file in the subset above. */
export function parseYamlSubset(text: string): unknown[] {
  const docs: Line[][] = [[]];
  text.split('\n').forEach((raw, index) => {
    if (/^---\s*$/.test(raw)) {
      docs.push([]);
      return;
    }
    if (/\t/.test(raw.match(/^\s*/)![0])) throw new Error(`line ${index + 1}: tabs in indentation`);
    const text = stripComment(raw);
    if (text.trim() === '') return;
    docs.at(-1)!.push({ indent: text.length - text.trimStart().length, text: text.trim(), number: index + 1 });
  });
  return docs.filter((d) => d.length > 0).map((lines) => new Parser(lines).parse());
}
