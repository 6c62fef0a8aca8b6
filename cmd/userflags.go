package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/pkg/experiment"
)

// userFlags are the flags that describe one user, shared by every command
// that evaluates (evaluate, fetch, explain, assert): one implementation.
type userFlags struct {
	user       string
	fields     map[string]*string
	props      []string
	groups     []string
	groupProps []string
}

// userFieldFlags maps a flag name to the user field it sets.
var userFieldFlags = []struct {
	flag, help string
	field      func(*experiment.User) *string
}{
	{"user-id", "user id", func(u *experiment.User) *string { return &u.UserID }},
	{"device-id", "device id", func(u *experiment.User) *string { return &u.DeviceID }},
	{"country", "country", func(u *experiment.User) *string { return &u.Country }},
	{"region", "region", func(u *experiment.User) *string { return &u.Region }},
	{"dma", "designated market area", func(u *experiment.User) *string { return &u.DMA }},
	{"city", "city", func(u *experiment.User) *string { return &u.City }},
	{"language", "language", func(u *experiment.User) *string { return &u.Language }},
	{"platform", "platform", func(u *experiment.User) *string { return &u.Platform }},
	{"version", "app version", func(u *experiment.User) *string { return &u.Version }},
	{"os", "operating system", func(u *experiment.User) *string { return &u.OS }},
	{"device-manufacturer", "device manufacturer", func(u *experiment.User) *string { return &u.DeviceManufacturer }},
	{"device-brand", "device brand", func(u *experiment.User) *string { return &u.DeviceBrand }},
	{"device-model", "device model", func(u *experiment.User) *string { return &u.DeviceModel }},
	{"carrier", "carrier", func(u *experiment.User) *string { return &u.Carrier }},
	{"library", "library", func(u *experiment.User) *string { return &u.Library }},
}

func (uf *userFlags) register(fs *pflag.FlagSet) {
	uf.fields = map[string]*string{}
	for _, f := range userFieldFlags {
		uf.fields[f.flag] = fs.String(f.flag, "", "user's "+f.help)
	}
	fs.StringVar(&uf.user, "user", "", "whole user object: JSON, @FILE, or - for stdin (field flags override it)")
	fs.StringArrayVarP(&uf.props, "prop", "p", nil, "user property KEY=VALUE (VALUE a string, as typed) or KEY:=JSON (repeatable)")
	fs.StringArrayVar(&uf.groups, "group", nil, "group membership TYPE=NAME (repeatable)")
	fs.StringArrayVar(&uf.groupProps, "group-prop", nil, "group property TYPE:NAME:KEY=VALUE (a string) or TYPE:NAME:KEY:=JSON (repeatable)")
}

// given reports whether any user flag was set.
func (uf *userFlags) given(fs *pflag.FlagSet) bool {
	for _, name := range []string{"user", "prop", "group", "group-prop"} {
		if fs.Changed(name) {
			return true
		}
	}
	for _, f := range userFieldFlags {
		if fs.Changed(f.flag) {
			return true
		}
	}
	return false
}

// build assembles the user: the --user object first, then each field flag.
func (uf *userFlags) build(fs *pflag.FlagSet, stdin io.Reader) (*experiment.User, error) {
	u := &experiment.User{}
	if uf.user != "" {
		var err error
		if u, err = readUserArg(uf.user, stdin); err != nil {
			return nil, err
		}
	}
	for _, f := range userFieldFlags {
		if fs.Changed(f.flag) {
			*f.field(u) = *uf.fields[f.flag]
		}
	}
	if err := applyProps(u, uf.props); err != nil {
		return nil, err
	}
	if err := applyGroups(u, uf.groups); err != nil {
		return nil, err
	}
	return u, applyGroupProps(u, uf.groupProps)
}

const maxUserBytes = 64 << 20

func readUserArg(arg string, stdin io.Reader) (*experiment.User, error) {
	var data []byte
	var err error
	source := "--user"
	switch {
	case arg == "-":
		source = "stdin"
		data, err = io.ReadAll(io.LimitReader(stdin, maxUserBytes+1))
	case strings.HasPrefix(arg, "@"):
		source = arg[1:]
		if data, err = readInput(inputContext(stdin), arg[1:], maxUserBytes); err != nil {
			return nil, namedFileError("--user", arg, err)
		}
	default:
		if t := strings.TrimSpace(arg); t != "" && t[0] != '{' && t[0] != '[' {
			return nil, notUserObject(arg)
		}
		data = []byte(arg)
	}
	if err != nil {
		return nil, err
	}
	if len(data) > maxUserBytes {
		return nil, inputError(fmt.Errorf("%s: user object larger than %d MiB", source, maxUserBytes>>20))
	}
	return decodeUser(source, data)
}

// notUserObject is the error for --user given a word: a file name without
// the @, or a user id meant for --user-id. The hint says how to give each.
func notUserObject(arg string) error {
	err := inputError(fmt.Errorf("--user %q: want a JSON object, @FILE or - (stdin)", arg))
	if st, serr := os.Stat(arg); serr == nil && st.Mode().IsRegular() {
		return withHint(err, fmt.Sprintf("to read the file, use --user %s (or --user-id %s for a user id)", shellQuote("@"+arg), shellQuote(arg)))
	}
	return withHint(err, fmt.Sprintf("for a user id, use --user-id %s; to read a file, --user @FILE", shellQuote(arg)))
}

// readFileLimited reads a whole file, refusing one larger than limit, for
// callers that run without a command's context (shell completion).
func readFileLimited(path string, limit int64) ([]byte, error) {
	return readInput(context.Background(), path, limit)
}

func splitKV(s, sep, flag, form string) (string, string, error) {
	k, v, ok := strings.Cut(s, sep)
	if !ok || k == "" {
		return "", "", usageError("--%s %q: want %s", flag, s, form)
	}
	return k, v, nil
}

// propKV splits a property argument: KEY=VALUE sets the string VALUE exactly
// as typed (-p version=1.10 stays "1.10", never the number 1.1), KEY:=JSON
// sets a JSON value (-p age:=30, -p 'tags:=["a","b"]'), as HTTPie does. A
// string is never guessed to be JSON: that rewrote numbers and versions.
func propKV(arg, flag, form string) (string, any, error) {
	k, v, err := splitKV(arg, "=", flag, form)
	if err != nil {
		return "", nil, err
	}
	key, isJSON := strings.CutSuffix(k, ":")
	if !isJSON {
		return k, v, nil
	}
	if key == "" {
		return "", nil, usageError("--%s %q: want %s", flag, arg, form)
	}
	var x any
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return "", nil, withHint(usageError("--%s %q: the value after := is not JSON", flag, arg),
			fmt.Sprintf("for a string, use %s=VALUE", key))
	}
	return key, x, nil
}

func applyProps(u *experiment.User, props []string) error {
	for _, p := range props {
		k, v, err := propKV(p, "prop", "KEY=VALUE or KEY:=JSON")
		if err != nil {
			return err
		}
		if u.UserProperties == nil {
			u.UserProperties = map[string]any{}
		}
		u.UserProperties[k] = v
	}
	return nil
}

func applyGroups(u *experiment.User, groups []string) error {
	for _, g := range groups {
		t, name, err := splitKV(g, "=", "group", "TYPE=NAME")
		if err != nil {
			return err
		}
		if u.Groups == nil {
			u.Groups = map[string][]string{}
		}
		u.Groups[t] = append(u.Groups[t], name)
	}
	return nil
}

func applyGroupProps(u *experiment.User, props []string) error {
	for _, p := range props {
		path, v, err := propKV(p, "group-prop", "TYPE:NAME:KEY=VALUE or TYPE:NAME:KEY:=JSON")
		if err != nil {
			return err
		}
		parts := strings.SplitN(path, ":", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return usageError("--group-prop %q: want TYPE:NAME:KEY=VALUE", p)
		}
		// A group's properties are only looked at for the user's groups:
		// without the membership the property would be ignored, silently.
		if !slices.Contains(u.Groups[parts[0]], parts[1]) {
			return withHint(usageError("--group-prop %q: the user is not in %s %q", p, parts[0], parts[1]),
				fmt.Sprintf("add --group %s", shellQuote(parts[0]+"="+parts[1])))
		}
		if u.GroupProperties == nil {
			u.GroupProperties = map[string]map[string]any{}
		}
		if u.GroupProperties[parts[0]] == nil {
			u.GroupProperties[parts[0]] = map[string]any{}
		}
		props, _ := u.GroupProperties[parts[0]][parts[1]].(map[string]any)
		if props == nil {
			props = map[string]any{}
			u.GroupProperties[parts[0]][parts[1]] = props
		}
		props[parts[2]] = v
	}
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it, for hints that
// are meant to be copied: 'org id=acme'.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '=' || r == '.' || r == '/' || r == ':' || r == '@' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
