package cmd

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/cookie"
	"github.com/flagkit/experiment/pkg/experiment"
)

func newCookieCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "cookie",
		Short: "Name, parse and generate the Amplitude identity cookie",
		Long: "The Amplitude identity cookie carries the browser's device id (and user id once logged in).\n" +
			"Server code needs the same device id to evaluate flags consistently with the browser.",
	}
	c.AddCommand(newCookieNameCmd(f), newCookieParseCmd(f), newCookieGenerateCmd(f))
	return c
}

// formatFlags picks the cookie format: legacy (amplitude-js) unless
// --new-format (Browser SDK 2.0) says otherwise.
type formatFlags struct{ newFormat, legacy bool }

func (ff *formatFlags) register(c *cobra.Command, withLegacy bool) {
	c.Flags().BoolVar(&ff.newFormat, "new-format", false, "Browser SDK 2.0 format (AMP_ cookie, base64 JSON)")
	if withLegacy {
		c.Flags().BoolVar(&ff.legacy, "legacy", false, "legacy amplitude-js format (amp_ cookie, dotted)")
		c.MarkFlagsMutuallyExclusive("new-format", "legacy")
	}
}

func (ff *formatFlags) format() cookie.Format {
	if ff.newFormat {
		return cookie.BrowserSDK2
	}
	return cookie.Legacy
}

func newCookieNameCmd(f *Factory) *cobra.Command {
	var ff formatFlags
	var apiKey string
	c := &cobra.Command{
		Use:   "name --api-key KEY [--new-format]",
		Short: "Print the identity cookie's name for an analytics API key",
		Args:  argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if apiKey == "" {
				return withHint(usageError("an API key is needed: --api-key or EXPERIMENT_API_KEY"),
					"it is the analytics project's API key, under Settings > Projects in Amplitude")
			}
			name, err := cookie.Name(apiKey, ff.format())
			if err != nil {
				return inputError(err)
			}
			_, err = fmt.Fprintln(f.IO.Out, name)
			return err
		},
	}
	bindSetting(c.Flags(), &apiKey, "api-key", "analytics API key")
	ff.register(c, false)
	return c
}

func newCookieParseCmd(f *Factory) *cobra.Command {
	var ff formatFlags
	var output, apiKey string
	c := &cobra.Command{
		Use:   "parse VALUE|-",
		Short: "Decode the device id and user id in a cookie value (or a whole Cookie header)",
		Long: "Decode an Amplitude identity cookie. VALUE is the cookie's value, a whole Cookie header\n" +
			"(name=value; ...), or - to read it from stdin. The format is detected unless --new-format\n" +
			"or --legacy says which. With -o json it prints a user object that evaluate accepts:\n\n" +
			"  experiment cookie parse \"$C\" -o json | experiment evaluate --flags flags.json --user -",
		Args: needArgs(1, 1, "a cookie value (or - to read it from stdin)"),
		RunE: func(c *cobra.Command, args []string) error {
			value, err := cookieArg(args[0], f.IO.In)
			if err != nil {
				return err
			}
			id, format, err := parseCookie(value, apiKey, ff, c.Flags().Changed("new-format") || c.Flags().Changed("legacy"))
			if err != nil {
				return err
			}
			return renderIdentity(f.IO, output, id, format)
		},
	}
	ff.register(c, true)
	// Not the api-key setting: a key from the environment or the config
	// file, for one project, must not make a header from another site
	// fail; the option only chooses among the cookies of a header.
	c.Flags().StringVar(&apiKey, "api-key", "", "with a Cookie header: pick the cookie named for this analytics API key")
	registerOutput(c.Flags(), &output, dataOutput, "table", "json", "yaml")
	c.ValidArgsFunction = cobra.NoFileCompletions
	return c
}

func cookieArg(arg string, stdin io.Reader) (string, error) {
	if arg != "-" {
		return strings.TrimSpace(arg), nil
	}
	// Read one byte past the limit: cutting a longer input would parse
	// another cookie than the one given.
	const maxCookieBytes = 1 << 20
	data, err := io.ReadAll(io.LimitReader(stdin, maxCookieBytes+1))
	if err != nil {
		return "", ioError(fmt.Errorf("stdin: %w", err))
	}
	if len(data) > maxCookieBytes {
		return "", inputError(fmt.Errorf("stdin: longer than %d MiB: not a cookie or Cookie header", maxCookieBytes>>20))
	}
	return strings.TrimSpace(string(data)), nil
}

func parseCookie(value, apiKey string, ff formatFlags, explicit bool) (cookie.Identity, cookie.Format, error) {
	if strings.Contains(value, "=") && (strings.Contains(value, ";") || strings.HasPrefix(strings.ToLower(value), "amp_")) {
		v, format, err := cookie.FromHeader(value, apiKey)
		if err != nil {
			return cookie.Identity{}, 0, cookieError(err)
		}
		value = v
		if !explicit {
			ff.newFormat = format == cookie.BrowserSDK2
			explicit = true
		}
	}
	if explicit {
		id, err := cookie.Parse(value, ff.format())
		return id, ff.format(), cookieError(err)
	}
	id, format, err := cookie.ParseAuto(value)
	return id, format, cookieError(err)
}

func cookieError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, cookie.ErrMalformed) {
		return inputError(fmt.Errorf("malformed cookie: %w", err))
	}
	return inputError(err)
}

// renderIdentity prints a parsed cookie: a table for people, or the user
// object that evaluate --user reads.
func renderIdentity(ios *cli.IOStreams, output string, id cookie.Identity, format cookie.Format) error {
	if output != "table" {
		return writeOutput(writeData(ios.Out, output, experiment.User{DeviceID: id.DeviceID, UserID: id.UserID}))
	}
	t := ios.OutTable("FIELD", "VALUE")
	t.AddRow("format", format.String())
	t.AddRow("device_id", id.DeviceID)
	t.AddRow("user_id", id.UserID)
	return writeOutput(t.Render(ios.Out))
}

func newCookieGenerateCmd(f *Factory) *cobra.Command {
	var ff formatFlags
	var deviceID string
	c := &cobra.Command{
		Use:   "generate [--device-id ID] [--new-format]",
		Short: "Print a cookie value that carries a device id",
		Long: "Print a cookie value that makes the browser SDK adopt a device id. Without --device-id,\n" +
			"a fresh random one (a version 4 UUID, as Browser SDK 2.0 makes) is used, for a visitor\n" +
			"who has none yet; cookie parse reads it back.",
		Args: argsUsage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			// An explicitly empty --device-id is a mistake, not a request
			// for a fresh id.
			if c.Flags().Changed("device-id") && deviceID == "" {
				return usageError("--device-id is empty")
			}
			if deviceID == "" {
				deviceID = cookie.NewDeviceID()
			}
			v, err := cookie.Generate(deviceID, ff.format())
			if err != nil {
				return inputError(err)
			}
			_, err = fmt.Fprintln(f.IO.Out, v)
			return err
		},
	}
	c.Flags().StringVar(&deviceID, "device-id", "", "the device id to carry (default: a fresh random one)")
	ff.register(c, false)
	return c
}
