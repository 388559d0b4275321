package deploydb

import (
	"fmt"
	"slices"
)

// MaxImportBytes is the largest import file the API reads (32 MiB:
// about 100,000 deployments).
const MaxImportBytes = 32 << 20

// MaxImportRecords is the most deployments one import takes.
const MaxImportRecords = 100_000

// MaxImportProblems bounds the problems the error refusing an import
// lists (its message says how many there are).
const MaxImportProblems = 1000

// ImportRecord is one deployment of another tool's history, one line of
// an import file.
type ImportRecord struct {
	// Line is the record's line in the file, for errors.
	Line        int              `json:"-"`
	Group       string           `json:"group"`
	Name        string           `json:"name"`
	Version     string           `json:"version"`
	SourceURL   string           `json:"sourceUrl"`
	Service     string           `json:"service"`
	Environment string           `json:"environment"`
	Status      DeploymentStatus `json:"status"`
	// Reason is pipeline (the default), rollback or hotfix.
	Reason     Reason   `json:"reason"`
	StartedAt  Time     `json:"startedAt"`
	FinishedAt Time     `json:"finishedAt"`
	Commits    []Commit `json:"commits"`
}

// Artifact returns the artifact the record names.
func (r *ImportRecord) Artifact() Artifact {
	return Artifact{Group: r.Group, Name: r.Name, Version: r.Version, SourceURL: r.SourceURL, Commits: r.Commits}
}

// Validate checks the record against cfg: every field, the service and
// environment known to cfg. It returns the problems found, each naming
// the record's line and field; none when it is good.
func (r *ImportRecord) Validate(cfg *Config) []FieldError {
	var out []FieldError
	add := func(field, msg string) { out = append(out, FieldError{Line: r.Line, Field: field, Message: msg}) }
	a := r.Artifact()
	if err := a.Validate(); err != nil {
		for _, f := range ErrorFields(err) {
			add(f.Field, f.Message)
		}
	}
	switch {
	case r.Service == "":
		add("service", "is required")
	case cfg.Services[r.Service] == nil:
		add("service", "is not a service of the configuration: "+quote(r.Service))
	}
	switch {
	case r.Environment == "":
		add("environment", "is required")
	case cfg.Environments[r.Environment] == nil:
		add("environment", "is not an environment of the configuration: "+quote(r.Environment))
	}
	if r.Status != DeploymentSuccess && r.Status != DeploymentFailed {
		add("status", "must be SUCCESS or FAILED, not "+quote(string(r.Status)))
	}
	if !slices.Contains([]Reason{"", ReasonPipeline, ReasonRollback, ReasonHotfix}, r.Reason) {
		add("reason", "must be pipeline, rollback or hotfix, not "+quote(string(r.Reason)))
	}
	if r.StartedAt.IsZero() {
		add("startedAt", "is required (RFC 3339)")
	}
	if r.FinishedAt.IsZero() {
		add("finishedAt", "is required (RFC 3339)")
	}
	if !r.StartedAt.IsZero() && r.FinishedAt.Before(r.StartedAt.Time) {
		add("finishedAt", "is before startedAt")
	}
	return out
}

// NothingImported ends the message of an ImportError.
const NothingImported = "; nothing was imported"

// ImportError returns the EINVALID that refuses an import for problems
// (of lines, FieldError.Line), sorted by line; its message names the
// first.
func ImportError(problems []FieldError) error {
	slices.SortStableFunc(problems, func(a, b FieldError) int { return a.Line - b.Line })
	p := problems[0]
	what := p.Message
	if p.Field != "" {
		what = p.Field + " " + what
	}
	msg := fmt.Sprintf("invalid import: line %d: %s", p.Line, what)
	if len(problems) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(problems)-1)
	}
	if len(problems) > MaxImportProblems {
		msg += fmt.Sprintf("; the first %d are listed", MaxImportProblems)
		problems = problems[:MaxImportProblems]
	}
	return &Error{Code: EINVALID, Message: msg + NothingImported, Fields: problems}
}

// ImportResult says what an import did.
type ImportResult struct {
	// Imported counts the deployments added, Unchanged those that were
	// there already (imported before, or twice in the file).
	Imported  int `json:"imported"`
	Unchanged int `json:"unchanged"`
	// ArtifactsCreated counts the artifacts the import created; the others
	// it named existed and were matched.
	ArtifactsCreated int `json:"artifactsCreated"`
	// Events are the history.imported events recorded, one per chunk of
	// the file that added deployments; none when nothing was added.
	Events []int64 `json:"events"`
}

// ImportedFlowPipeline is the pipeline of the flow an imported deployment
// is given: it went through no pipeline of DeployDB's.
const ImportedFlowPipeline = "(imported)"

// EnvironmentDiff is how two environments differ: the services whose
// current version differs, and those deployed to one side only.
type EnvironmentDiff struct {
	From     string        `json:"from"`
	To       string        `json:"to"`
	Services []ServiceDiff `json:"services"`
}

// ServiceDiff is one service whose current version differs between two
// environments. From or To is nil when nothing of the service runs on that
// side.
type ServiceDiff struct {
	Service string          `json:"service"`
	From    *MatrixArtifact `json:"from"`
	To      *MatrixArtifact `json:"to"`
	// Commits are the commits between the two versions, when the
	// artifacts carry them: those of the artifacts of the same group:name
	// published after To's version up to From's (Direction ahead), or
	// after From's up to To's (behind: To runs a newer version). Newest
	// artifact first.
	Commits []Commit `json:"commits"`
	// CommitsTruncated is set when there are more than MaxDiffCommits
	// commits between the two: Commits holds the newest.
	CommitsTruncated bool   `json:"commitsTruncated,omitempty"`
	Direction        string `json:"direction,omitempty"`
}

// Directions of a ServiceDiff.
const (
	DiffAhead  = "ahead"  // From runs a newer version than To
	DiffBehind = "behind" // From runs an older version than To
)

// CommitRange selects the commits brought by the artifacts of one
// group:name after artifact After up to artifact UpTo, in the order they
// were created (an imported artifact is created at the start of its first
// deployment in the file).
type CommitRange struct {
	Group, Name string
	After, UpTo int64
	// Limit bounds the commits returned (0: MaxDiffCommits).
	Limit int
}

// MaxDiffCommits bounds the commits a diff lists per service.
const MaxDiffCommits = 1000
