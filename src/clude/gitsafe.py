"""The options every git command of clude's starts with, so that nothing an agent wrote into a
repository's config or hooks ever runs inside clude's own git commands (standard library only)."""

# No hooks (a post-commit or pre-push an agent planted), no file-system monitor (core.fsmonitor
# names a program git would start), no protocol.ext (a URL that runs a command). Given on the command
# line, they win over every config file; git does not pass them on to the receive-pack of a local
# upstream, whose own hooks still run.
SAFE_GIT = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never")
# For the git commands that read an agent's files (taking its result, diffing it): no user or system
# config either, so no clean/smudge filter or textconv program named there runs on what the agent wrote.
ISOLATED = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
