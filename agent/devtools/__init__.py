"""Developer tools: the demo, a local broker, the package scaffold and its templates, reference
docs generation and the data-path figure of docs/architecture.md.

May import anything of ours; nothing of the daemon imports devtools/."""
