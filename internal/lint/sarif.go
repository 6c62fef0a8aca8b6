package lint

import (
	"fmt"
	"slices"
	"strings"
)

// SARIF 2.1.0, the format code-scanning tools (GitHub code scanning, GitLab,
// IDE viewers) read: the parts of it a lint run fills.

// SARIFLog is a SARIF document with one run.
type SARIFLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool       sarifTool     `json:"tool"`
	ColumnKind string        `json:"columnKind"`
	Results    []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string       `json:"id"`
	ShortDescription     sarifText    `json:"shortDescription"`
	HelpURI              string       `json:"helpUri"`
	DefaultConfiguration sarifDefault `json:"defaultConfiguration"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifDefault struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// SARIFSource says where the findings' document is: URI names the file
// (relative, with forward slashes, as code scanning matches it against the
// repository), "" when the flags came from a server; Locator finds lines.
type SARIFSource struct {
	URI     string
	Locator *Locator
}

// The project's home and where each rule is documented.
const (
	informationURI = "https://github.com/flagkit/experiment"
	rulesDocURI    = informationURI + "/blob/main/docs/cli.md#lint-rules"
)

// SARIF builds the log of one lint run; toolVersion may be empty.
func SARIF(findings []Finding, src SARIFSource, toolVersion string) *SARIFLog {
	rules := Rules()
	driver := sarifDriver{Name: "experiment lint", Version: toolVersion, InformationURI: informationURI, Rules: make([]sarifRule, len(rules))}
	for i, r := range rules {
		driver.Rules[i] = sarifRule{ID: r.ID, ShortDescription: sarifText{r.Summary}, HelpURI: rulesDocURI,
			DefaultConfiguration: sarifDefault{r.Severity.String()}}
	}
	results := make([]sarifResult, 0, len(findings))
	for _, f := range findings {
		results = append(results, sarifResult{RuleID: f.Rule, Level: f.Severity.String(), Message: sarifText{f.Message},
			RuleIndex: slices.IndexFunc(rules, func(r Rule) bool { return r.ID == f.Rule }),
			Locations: []sarifLocation{location(f, src)}})
	}
	return &SARIFLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0",
		Runs: []sarifRun{{Tool: sarifTool{driver}, ColumnKind: "unicodeCodePoints", Results: results}}}
}

// location is the finding's place in the file, when known, and always
// its place in the flag: the flag key and the path inside the flag.
func location(f Finding, src SARIFSource) sarifLocation {
	inFlag := f.Path
	if i := strings.IndexByte(inFlag, ']'); i >= 0 {
		inFlag = inFlag[i+1:]
	}
	name := f.Flag
	if f.Segment != nil {
		name = fmt.Sprintf("%s segment %d", f.Flag, *f.Segment)
	}
	loc := sarifLocation{LogicalLocations: []sarifLogical{{Name: name, FullyQualifiedName: f.Flag + inFlag, Kind: "object"}}}
	if src.URI == "" {
		return loc
	}
	loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: src.URI}}
	if src.Locator != nil {
		if line, col, ok := src.Locator.Position(f.Path); ok {
			loc.PhysicalLocation.Region = &sarifRegion{StartLine: line, StartColumn: col}
		}
	}
	return loc
}
