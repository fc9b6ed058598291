/**
 * Enough YAML for our deploy files (render.yaml), no dependency: block maps and block
 * sequences by indentation, `#` comments, plain, single- and double-quoted scalars, numbers
 * and booleans. Anything else (flow collections, anchors, multi-line strings) throws, so the
 * file stays in the subset a reader can trust at a glance.
 */
export type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  no: number;
}

export function parseYaml(source: string): Yaml {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    const text = stripComment(raw).trimEnd();
    if (text.trim() === '') return;
    if (/\t/.test(raw.slice(0, raw.length - raw.trimStart().length))) {
      throw new Error(`line ${i + 1}: tab indentation`);
    }
    lines.push({ indent: raw.length - raw.trimStart().length, text: text.trim(), no: i + 1 });
  });
  let pos = 0;

  function block(indent: number): Yaml {
    const first = lines[pos];
    if (!first || first.indent < indent) return null;
    return first.text.startsWith('- ') || first.text === '-'
      ? sequence(first.indent)
      : map(first.indent);
  }

  function sequence(indent: number): Yaml[] {
    const items: Yaml[] = [];
    while (
      pos < lines.length &&
      lines[pos]!.indent === indent &&
      lines[pos]!.text.startsWith('-')
    ) {
      const line = lines[pos]!;
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        pos++;
        items.push(block(indent + 1));
      } else if (/^[^'"][^:]*:( |$)/.test(rest)) {
        // "- key: value": a map whose first entry sits on the dash's line.
        lines[pos] = { indent: indent + (line.text.length - rest.length), text: rest, no: line.no };
        items.push(map(lines[pos]!.indent));
      } else {
        pos++;
        items.push(scalar(rest, line.no));
      }
    }
    return items;
  }

  function map(indent: number): { [key: string]: Yaml } {
    const out: { [key: string]: Yaml } = {};
    while (
      pos < lines.length &&
      lines[pos]!.indent === indent &&
      !lines[pos]!.text.startsWith('- ')
    ) {
      const line = lines[pos]!;
      const match = /^([^'"][^:]*|"[^"]*"|'[^']*'):(?: (.*))?$/.exec(line.text);
      if (!match) throw new Error(`line ${line.no}: expected "key: value", got "${line.text}"`);
      const parsedKey = scalar(match[1]!, line.no);
      if (typeof parsedKey === 'object' && parsedKey !== null) {
        throw new Error(`line ${line.no}: unsupported key`);
      }
      const key = String(parsedKey);
      if (key in out) throw new Error(`line ${line.no}: duplicate key "${key}"`);
      pos++;
      const value = match[2]?.trim();
      if (value === undefined || value === '') {
        const next = lines[pos];
        out[key] =
          next && next.indent > indent
            ? block(next.indent)
            : next && next.indent === indent && next.text.startsWith('- ')
              ? sequence(indent)
              : null;
      } else {
        out[key] = scalar(value, line.no);
      }
    }
    const next = lines[pos];
    if (next && next.indent > indent) throw new Error(`line ${next.no}: unexpected indentation`);
    return out;
  }

  const doc = block(0);
  if (pos < lines.length) throw new Error(`line ${lines[pos]!.no}: unexpected content`);
  return doc;
}

function scalar(text: string, no: number): Yaml {
  if (/^".*"$/.test(text)) return JSON.parse(text) as string;
  if (/^'.*'$/.test(text)) return text.slice(1, -1).replace(/''/g, "'");
  if (/^[[{&*!|>%@`]/.test(text)) throw new Error(`line ${no}: unsupported YAML: ${text}`);
  if (text === 'true' || text === 'false') return text === 'true';
  if (text === 'null' || text === '~') return null;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

/** Drops a `#` comment that is not inside quotes. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) {
      return line.slice(0, i);
    }
  }
  return line;
}
