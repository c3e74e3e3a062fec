"""Developer tools: the demo, a local broker, the package scaffold and its templates, reference
docs generation.

May import anything of ours; nothing of the daemon imports devtools/."""
