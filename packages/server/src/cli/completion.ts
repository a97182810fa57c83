// `fleetwire completion bash|zsh`: a completion script made from the command tree itself, so that
// it names every command and option this version has and no other.
import type { Command } from 'commander';

interface Node {
  /** The words from the top to this command, e.g. `devices list`; '' for `fleetwire` itself. */
  path: string;
  commands: { name: string; description: string }[];
  options: { flag: string; description: string }[];
}

function walk(c: Command, path: string, out: Node[]): Node[] {
  const help = c.createHelp();
  const options = help.visibleOptions(c).flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined).map((flag) => ({ flag, description: o.description })));
  const commands = c.commands.filter((s) => !(s as Command & { _hidden?: boolean })._hidden);
  out.push({ path, commands: commands.map((s) => ({ name: s.name(), description: s.description() })), options });
  for (const s of commands) walk(s, path ? `${path} ${s.name()}` : s.name(), out);
  return out;
}

/** A word in single quotes for bash and zsh. */
function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function bashCompletion(cli: Command): string {
  const nodes = walk(cli, '', []);
  const known = nodes.filter((n) => n.path).map((n) => quote(n.path)).join('|');
  const cases = nodes.map((n) => `    ${quote(n.path)}) words=${quote([...n.commands.map((c) => c.name), ...n.options.map((o) => o.flag)].join(' '))} ;;`).join('\n');
  return `# bash completion for ${cli.name()}: source <(${cli.name()} completion bash), or write it to
# /etc/bash_completion.d/${cli.name()} (or ~/.local/share/bash-completion/completions/${cli.name()})
_${cli.name()}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmdpath= next i words=
  for ((i = 1; i < COMP_CWORD; i++)); do
    next="\${cmdpath:+$cmdpath }\${COMP_WORDS[i]}"
    case "$next" in
      ${known}) cmdpath=$next ;;
    esac
  done
  case "$cmdpath" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _${cli.name()} ${cli.name()}
`;
}

/** `name:description` for zsh's _describe, whose separator is the first unescaped colon. */
function described(name: string, description: string): string {
  return quote(`${name.replace(/:/g, '\\:')}:${description}`);
}

export function zshCompletion(cli: Command): string {
  const nodes = walk(cli, '', []);
  const known = nodes.filter((n) => n.path).map((n) => quote(n.path)).join('|');
  const cases = nodes
    .map((n) => `    (${quote(n.path)})\n      cmds=(${n.commands.map((c) => described(c.name, c.description)).join(' ')})\n      opts=(${n.options.map((o) => described(o.flag, o.description)).join(' ')}) ;;`)
    .join('\n');
  return `#compdef ${cli.name()}
# zsh completion for ${cli.name()}: source <(${cli.name()} completion zsh) after compinit, or write it
# as _${cli.name()} into a folder of $fpath
_${cli.name()}() {
  local cmdpath= next i
  local -a cmds opts
  for ((i = 2; i < CURRENT; i++)); do
    next="\${cmdpath:+$cmdpath }\${words[i]}"
    case "$next" in
      (${known}) cmdpath=$next ;;
    esac
  done
  case "$cmdpath" in
${cases}
  esac
  if [[ \${words[CURRENT]} == -* ]]; then
    _describe -t options option opts
  else
    _describe -t commands command cmds || _files
  fi
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _${cli.name()} "$@"
else
  compdef _${cli.name()} ${cli.name()}
fi
`;
}
