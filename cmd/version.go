package cmd

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at release time with -ldflags "-X github.com/flagkit/experiment/cmd.version=…".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && v.Commit == "":
				v.Commit = s.Value
			case s.Key == "vcs.time" && v.Date == "":
				v.Date = s.Value
			}
		}
	}
	return v
}

func newVersionCmd(f *Factory) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if output != "table" {
				return writeOutput(writeData(f.IO.Out, output, currentVersion()))
			}
			return printVersion(f.IO.Out)
		},
	}
	// The version is for people first, also in a pipe.
	registerVersionOutput(c.Flags(), &output)
	return c
}

// printVersion writes the version for people: `experiment version` and
// `experiment --version`.
func printVersion(w io.Writer) error {
	v := currentVersion()
	_, err := fmt.Fprintf(w, "experiment %s\ncommit: %s\nbuilt: %s\n%s %s\n", v.Version, orUnknown(v.Commit), orUnknown(v.Date), v.GoVersion, v.Platform)
	return writeOutput(err)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
