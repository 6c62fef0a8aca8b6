package eval

import "strconv"

// What a linter needs to judge filter values exactly as the engine reads
// them: a lint rule that parsed numbers or versions its own way would warn
// about values the engine accepts, or miss ones it ignores.

// DistributionEnd is the exclusive end of the distribution space: a
// distribution value is hash / 100, at most 42949672, so distributions
// that together cover [0, DistributionEnd) leave nobody out.
const DistributionEnd = maxDistribution + 1

// IsNumber reports whether a filter value of a comparison operator (less,
// greater, ...) is read as a number; other values compare as text, or not
// at all when the condition has numbers too.
func IsNumber(value string) bool {
	_, err := strconv.ParseFloat(value, 64)
	return err == nil
}

// IsVersion reports whether a filter value of a version operator is a
// version (major.minor[.patch[-prerelease]]); other values never match.
func IsVersion(value string) bool {
	_, ok := parseVersion(value)
	return ok
}

// ComparesNumbers reports whether op is one of the engine's less/greater
// operators, whose filter values IsNumber judges.
func ComparesNumbers(op string) bool {
	o, ok := opNames[op]
	return ok && o.isCompare()
}

// ComparesVersions reports whether op is one of the engine's version
// operators, whose filter values IsVersion judges.
func ComparesVersions(op string) bool {
	o, ok := opNames[op]
	return ok && o.isVersion()
}
