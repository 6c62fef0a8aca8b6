package cmd

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

type findUserOptions struct {
	IO       *cli.IOStreams
	Source   flagSource
	User     userFlags
	Output   string
	By       string
	Prefix   string
	Count    int
	Seed     uint64
	MaxTries int
	Flag     string
	Variant  string
	cmd      *cobra.Command
}

// The ids find-user can vary, by their --by name.
var findUserFields = map[string]func(*experiment.User) *string{
	"device_id": func(u *experiment.User) *string { return &u.DeviceID },
	"user_id":   func(u *experiment.User) *string { return &u.UserID },
}

func newFindUserCmd(f *Factory, runF func(context.Context, *findUserOptions) error) *cobra.Command {
	opts := &findUserOptions{IO: f.IO}
	c := &cobra.Command{
		Use:   "find-user FLAG_KEY VARIANT",
		Short: "Find user or device ids that land in a variant, with their hash and bucket",
		Long: "Search ids (--prefix P: P0, P1, ...; device ids by default: random UUIDs, reproducible with\n" +
			"--seed) until --count of them get VARIANT for the user the user options describe, each checked\n" +
			"by a full evaluation, and print each id with its murmur3 hash, allocation and distribution\n" +
			"bucket and the deciding segment. Exit 1, saying which segment or condition stands in the way,\n" +
			"when bucketing cannot reach the variant for that user.",
		Example: `  experiment find-user pricing-page-test lower-price --flags testdata/flags.json --country 'United States' -p plan=free
  experiment find-user onboarding-checklist treatment --flags flags.json --by user_id --prefix qa- --count 3 -o json`,
		Args: needArgs(2, 2, "FLAG_KEY and VARIANT"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Flag, opts.Variant, opts.cmd = args[0], args[1], c
			if opts.By != "" && findUserFields[opts.By] == nil {
				return usageError("--by %q: want device_id or user_id", opts.By)
			}
			if opts.Count < 1 || opts.MaxTries < 1 {
				return usageError("--count and --max-tries must be at least 1")
			}
			if !c.Flags().Changed("seed") {
				opts.Seed = rand.Uint64()
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runFindUser(c.Context(), opts)
		},
	}
	opts.Source.register(f, c.Flags(), oneShot...)
	opts.User.register(c.Flags())
	fl := c.Flags()
	fl.StringVar(&opts.By, "by", "", "the id to vary: device_id or user_id (default: what the flag buckets the variant by)")
	fl.StringVar(&opts.Prefix, "prefix", "", "try ids PREFIX0, PREFIX1, ... (default: random UUIDs for device ids, user-0, user-1, ... for user ids)")
	fl.IntVar(&opts.Count, "count", 5, "how many ids to find")
	fl.Uint64Var(&opts.Seed, "seed", 0, "seed for the random device ids, to find the same ones again (default: random)")
	fl.IntVar(&opts.MaxTries, "max-tries", 1_000_000, "give up after this many ids")
	registerOutput(fl, &opts.Output, dataOutput, "table", "json", "yaml")
	c.ValidArgsFunction = completeFlagThenVariant
	return c
}

// findUserReport is find-user's JSON form; a stable schema
// (docs/cli.md#find-user). Seed is null when ids come from --prefix.
type findUserReport struct {
	Flag    string    `json:"flag"`
	Variant string    `json:"variant"`
	By      string    `json:"by"`
	Seed    *uint64   `json:"seed"`
	Tries   int       `json:"tries"`
	IDs     []foundID `json:"ids"`
}

// foundID is one id and how the engine decided it. Bucket is null when
// the deciding segment did not hash (no bucket, or no bucketing value);
// its indices are -1 when the hash fell in no range, so that the
// segment's own variant was used.
type foundID struct {
	ID          string       `json:"id"`
	Variant     string       `json:"variant"`
	Segment     int          `json:"segment"`
	SegmentName string       `json:"segment_name"`
	Bucket      *foundBucket `json:"bucket"`
}

type foundBucket struct {
	Selector          []string `json:"selector"`
	Salt              string   `json:"salt"`
	Hash              uint32   `json:"hash"`
	Allocation        uint64   `json:"allocation"`   // hash % 100
	Distribution      uint64   `json:"distribution"` // hash / 100
	AllocationIndex   int      `json:"allocation_index"`
	DistributionIndex int      `json:"distribution_index"`
}

func runFindUser(ctx context.Context, opts *findUserOptions) error {
	fs, err := opts.Source.loadEvaluating(ctx, []string{opts.Flag})
	if err != nil {
		return err
	}
	if err := checkKeys(fs, []string{opts.Flag}, opts.Source.name()); err != nil {
		return err
	}
	flag := fs.Snapshot().Flag(opts.Flag)
	if v, ok := flag.Variants[opts.Variant]; !ok || v == nil {
		return withHint(usageError("flag %q has no variant %q", opts.Flag, opts.Variant), "its variants: "+strings.Join(slices.Sorted(maps.Keys(flag.Variants)), ", "))
	}
	template, err := opts.User.build(opts.cmd.Flags(), opts.IO.In)
	if err != nil {
		return err
	}
	routes := variantRoutes(flag, opts.Variant)
	if len(routes) == 0 {
		return notReachable(opts, noRoute(flag, opts.Variant))
	}
	var byErr error
	if opts.By == "" {
		if opts.By, byErr = defaultBy(flag, routes); byErr != nil {
			// The bucket hashes what no id changes (a group): the
			// template's own group may still land in the variant, for
			// every id. Search by device id, and say why when none does.
			opts.By = "device_id"
		}
	}
	s := &idSearch{fs: fs, opts: opts, template: *template, next: opts.idSource()}
	report, err := s.run(ctx)
	if err != nil {
		return err
	}
	if len(report.IDs) == 0 {
		if byErr != nil {
			return notReachable(opts, byErr.Error())
		}
		why, reachable := s.diagnose(flag, routes)
		if reachable {
			return notFound(opts, report.Tries, why)
		}
		return notReachable(opts, why)
	}
	if len(report.IDs) < opts.Count {
		fmt.Fprintf(opts.IO.ErrOut, "experiment: warning: found %d of %d ids in %d tries (--max-tries)\n", len(report.IDs), opts.Count, report.Tries)
	}
	return writeOutput(renderFoundIDs(opts.IO, opts.Output, report))
}

// noRoute says why no segment can give the variant: one that would
// matches nobody (conditions []), or none names it or gives it a share.
func noRoute(f *eval.Flag, variant string) string {
	for si, seg := range f.Segments {
		if seg.Conditions != nil && len(seg.Conditions) == 0 {
			if len(variantRoutes(&eval.Flag{Variants: f.Variants, Segments: []*eval.Segment{{Variant: seg.Variant, Bucket: seg.Bucket}}}, variant)) > 0 {
				return segmentTitle(f, si) + " names it, but its conditions are []: it matches nobody"
			}
		}
	}
	return "no segment names it and it has 0% in every bucket of the " + plural(len(f.Segments), "segment")
}

// notReachable is the failure of a search that cannot succeed: exit 1,
// as a check that failed, naming why.
func notReachable(opts *findUserOptions, why string) error {
	return &exitError{code: ExitCheckFailed, err: fmt.Errorf("flag %q: variant %q cannot be reached by bucketing for this user: %s", opts.Flag, opts.Variant, why),
		hint: "'experiment explain " + opts.Flag + "' with the same user shows every segment and condition"}
}

// notFound is the failure of a search that could succeed with more ids:
// exit 1 as well, but saying the ids ran out rather than that the variant
// is out of reach.
func notFound(opts *findUserOptions, tries int, why string) error {
	return &exitError{code: ExitCheckFailed, err: fmt.Errorf("flag %q: no id of the %d tried (--max-tries) gets variant %q: %s", opts.Flag, tries, opts.Variant, why),
		hint: "raise --max-tries, or 'experiment explain " + opts.Flag + "' with the same user shows every segment and condition"}
}

// idSource returns the generator of candidate ids: the prefix and a
// counter, or random version 4 UUIDs from the seed.
func (o *findUserOptions) idSource() func() string {
	prefix := o.Prefix
	if prefix == "" && o.By == "user_id" {
		prefix = "user-"
	}
	if prefix != "" {
		n, buf := 0, []byte(prefix)
		return func() string { // one allocation per id: the string
			buf = strconv.AppendInt(buf[:len(prefix)], int64(n), 10)
			n++
			return string(buf)
		}
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x6578706572696d65)) // "experime": any fixed second word
	return func() string { return randomUUID(r) }
}

func randomUUID(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		x := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	// One id per try of up to --max-tries: encode into one buffer, so the
	// string is the only allocation (Sprintf made seven).
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	hex.Encode(s[9:13], b[4:6])
	hex.Encode(s[14:18], b[6:8])
	hex.Encode(s[19:23], b[8:10])
	hex.Encode(s[24:36], b[10:16])
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return string(s[:])
}

// renderFoundIDs prints the ids: a table for people, the report for
// scripts.
func renderFoundIDs(ios *cli.IOStreams, format string, r *findUserReport) error {
	if format != "table" {
		return writeData(ios.Out, format, r)
	}
	t := ios.OutTable(strings.ToUpper(r.By), "HASH", "ALLOCATION", "DISTRIBUTION", "SEGMENT")
	t.KeyColumns(1)
	for _, id := range r.IDs {
		seg := strconv.Itoa(id.Segment)
		if id.SegmentName != "" {
			seg += " " + strconv.Quote(id.SegmentName)
		}
		hash, alloc, dist := "-", "-", "-"
		if b := id.Bucket; b != nil {
			hash, alloc, dist = strconv.FormatUint(uint64(b.Hash), 10), strconv.FormatUint(b.Allocation, 10), strconv.FormatUint(b.Distribution, 10)
		}
		t.AddRow(id.ID, hash, alloc, dist, seg)
	}
	return t.Render(ios.Out)
}
