// Package cdevents speaks CDEvents 0.5.1 for DeployDB: it renders the
// events DeployDB emits (service.deployed, service.upgraded,
// service.rolledback, environment.*), maps the events DeployDB accepts
// (artifact.published, service.deployed, service.upgraded,
// testsuiterun.finished, testcaserun.finished) onto DeployDB's records, and
// validates both against the specification's JSON schemas, which it embeds.
//
// Artifacts are identified by package URLs (purls): see PURL and ParsePURL.
package cdevents

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// SpecVersion is the CDEvents specification version DeployDB emits and whose
// schemas it validates against.
const SpecVersion = "0.5.1"

// Event types (context.type) DeployDB emits or accepts, with the versions the
// CDEvents 0.5.1 schemas define.
const (
	ServiceDeployed      = "dev.cdevents.service.deployed.0.3.0"
	ServiceUpgraded      = "dev.cdevents.service.upgraded.0.3.0"
	ServiceRolledback    = "dev.cdevents.service.rolledback.0.3.0"
	EnvironmentCreated   = "dev.cdevents.environment.created.0.3.0"
	EnvironmentModified  = "dev.cdevents.environment.modified.0.3.0"
	EnvironmentDeleted   = "dev.cdevents.environment.deleted.0.3.0"
	ArtifactPublished    = "dev.cdevents.artifact.published.0.3.0"
	TestSuiteRunFinished = "dev.cdevents.testsuiterun.finished.0.3.0"
	TestCaseRunFinished  = "dev.cdevents.testcaserun.finished.0.3.0"
)

// Kinds of the events DeployDB accepts: an event type without its
// "dev.cdevents." prefix and its version (Inbound.Kind).
const (
	KindArtifactPublished    = "artifact.published"
	KindServiceDeployed      = "service.deployed"
	KindServiceUpgraded      = "service.upgraded"
	KindTestSuiteRunFinished = "testsuiterun.finished"
	KindTestCaseRunFinished  = "testcaserun.finished"
)

// acceptedTypes lists the event types Parse maps, as error messages list
// them.
const acceptedTypes = ArtifactPublished + ", " + ServiceDeployed + ", " + ServiceUpgraded + ", " +
	TestSuiteRunFinished + ", " + TestCaseRunFinished

// MaxDocumentSize is the largest CDEvent document Validate and Parse read,
// in bytes (the API's body limit).
const MaxDocumentSize = 1 << 20

// MaxDocumentDepth is the deepest nesting of JSON objects and arrays
// Validate and Parse read; CDEvents need fewer than ten levels, the rest
// leaves room for customData.
const MaxDocumentDepth = 64

const typePrefix = "dev.cdevents."

// kindOf returns the kind of an event type ("service.deployed" for
// "dev.cdevents.service.deployed.0.3.0"), or "" when typ has no such shape.
func kindOf(typ string) string {
	rest, ok := strings.CutPrefix(typ, typePrefix)
	if !ok {
		return ""
	}
	// The kind is subject.predicate; the version follows.
	parts := strings.SplitN(rest, ".", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// short quotes s for an error message, cut to a readable length.
func short(s string) string {
	const max = 80
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
