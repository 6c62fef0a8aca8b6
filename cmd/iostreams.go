package cmd

import "github.com/flagkit/experiment/internal/cli"

// IOStreams is how a command talks to the outside (internal/cli): every
// command takes it, so it goes by its short name here.
type IOStreams = cli.IOStreams
