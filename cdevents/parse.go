package cdevents

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

// Inbound is a CDEvent DeployDB accepts, mapped onto DeployDB's terms.
type Inbound struct {
	// Type is the full context.type.
	Type string
	// ID, Source and Time are context.id, context.source and
	// context.timestamp (in UTC).
	ID     string
	Source string
	Time   time.Time
	// Kind is one of KindArtifactPublished, KindServiceDeployed,
	// KindServiceUpgraded, KindTestSuiteRunFinished, KindTestCaseRunFinished.
	Kind string
	// Artifact is, for artifact.published, the artifact subject.id names
	// (a purl), with SourceURL from customData.sourceUrl, else from the
	// purl's download_url qualifier, else empty: the caller refuses an
	// artifact without one. For service.*, the artifact content.artifactId
	// names (a purl), with SourceURL found the same way (the caller matches
	// the deployment on group, name and version).
	Artifact deploydb.Artifact
	// Service is subject.id for service.*; customData.service, if given,
	// for the test events.
	Service string
	// Environment is content.environment.id (service.* and test events).
	Environment string
	// Promotion is the name of the promotion a test event reports: the
	// test suite's (testsuiterun) or test case's (testcaserun) name, or its
	// id when it has no name.
	Promotion string
	// Outcome is the test event's content.outcome as sent: success,
	// failure or error (cancel is refused).
	Outcome string
	// Status is the promotion result the outcome means: PromotionSuccess
	// for success, PromotionFailed for failure and error.
	Status deploydb.PromotionStatus
	// InfoURL is the test suite's or test case's uri, if given.
	InfoURL string
	// Deployment is customData.deployment, if given: the DeployDB
	// deployment the event is about, for when the rest is ambiguous.
	Deployment int64
}

type inDoc struct {
	Context struct {
		ID        string `json:"id"`
		Source    string `json:"source"`
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
	} `json:"context"`
	Subject struct {
		ID      string          `json:"id"`
		Content json.RawMessage `json:"content"`
	} `json:"subject"`
	CustomData json.RawMessage `json:"customData"`
}

type inServiceContent struct {
	Environment struct {
		ID string `json:"id"`
	} `json:"environment"`
	ArtifactID string `json:"artifactId"`
}

// testRef is a content.testSuite or content.testCase.
type testRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URI  string `json:"uri"`
}

type inTestContent struct {
	Outcome     string `json:"outcome"`
	Environment struct {
		ID string `json:"id"`
	} `json:"environment"`
	TestSuite *testRef `json:"testSuite"`
	TestCase  *testRef `json:"testCase"`
}

// Parse validates a CDEvent document against its schema (see Validate) and
// maps it onto DeployDB's terms. It accepts artifact.published,
// service.deployed, service.upgraded, testsuiterun.finished and
// testcaserun.finished; every error is EINVALID with a message naming the
// problem: a document Validate refuses, any other event type, a purl that
// is not one, a cancelled test run (it decides nothing), a test event that
// names no test suite or test case, or a malformed customData.deployment,
// customData.service or customData.sourceUrl.
func Parse(doc []byte) (*Inbound, error) {
	typ, err := validate(doc)
	if err != nil {
		return nil, err
	}
	kind := kindOf(typ)
	switch kind {
	case KindArtifactPublished, KindServiceDeployed, KindServiceUpgraded, KindTestSuiteRunFinished, KindTestCaseRunFinished:
	default:
		return nil, deploydb.Errorf(deploydb.EINVALID, "DeployDB does not consume %s events; it accepts %s", typ, acceptedTypes)
	}
	var d inDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, deploydb.Errorf(deploydb.EINVALID, "the CDEvent is not JSON: %v", err)
	}
	// The schema's date-time allows a lower-case t and z; Go's parser does not.
	ts, err := time.Parse(time.RFC3339Nano, strings.ToUpper(d.Context.Timestamp))
	if err != nil {
		return nil, deploydb.Errorf(deploydb.EINVALID, "context.timestamp %s is not an RFC 3339 time", short(d.Context.Timestamp))
	}
	in := &Inbound{Type: typ, ID: d.Context.ID, Source: d.Context.Source, Time: ts.UTC(), Kind: kind}
	data, err := parseCustomData(d.CustomData)
	if err != nil {
		return nil, err
	}
	in.Deployment = data.deployment

	switch kind {
	case KindArtifactPublished:
		p, err := parsePURL(d.Subject.ID)
		if err != nil {
			return nil, deploydb.Errorf(deploydb.EINVALID, "subject.id %s is not a package URL: %v", short(d.Subject.ID), err)
		}
		in.Artifact = p.Artifact()
		if data.sourceURL != "" {
			in.Artifact.SourceURL = data.sourceURL
		}
	case KindServiceDeployed, KindServiceUpgraded:
		var c inServiceContent
		if err := json.Unmarshal(d.Subject.Content, &c); err != nil {
			return nil, deploydb.Errorf(deploydb.EINVALID, "subject.content: %v", err)
		}
		p, err := parsePURL(c.ArtifactID)
		if err != nil {
			return nil, deploydb.Errorf(deploydb.EINVALID, "subject.content.artifactId %s is not a package URL: %v", short(c.ArtifactID), err)
		}
		in.Artifact = p.Artifact()
		if data.sourceURL != "" {
			in.Artifact.SourceURL = data.sourceURL
		}
		in.Service = d.Subject.ID
		in.Environment = c.Environment.ID
	case KindTestSuiteRunFinished, KindTestCaseRunFinished:
		var c inTestContent
		if err := json.Unmarshal(d.Subject.Content, &c); err != nil {
			return nil, deploydb.Errorf(deploydb.EINVALID, "subject.content: %v", err)
		}
		ref, field := c.TestSuite, "testSuite"
		if kind == KindTestCaseRunFinished {
			ref, field = c.TestCase, "testCase"
		}
		if ref == nil {
			return nil, deploydb.Errorf(deploydb.EINVALID, "subject.content.%s is missing: its name (or id) names the DeployDB promotion the result is for", field)
		}
		in.Promotion = ref.Name
		if in.Promotion == "" {
			in.Promotion = ref.ID
		}
		in.InfoURL = ref.URI
		in.Environment = c.Environment.ID
		in.Service = data.service
		in.Outcome = c.Outcome
		switch c.Outcome {
		case "success":
			in.Status = deploydb.PromotionSuccess
		case "failure", "error":
			in.Status = deploydb.PromotionFailed
		case "cancel":
			return nil, deploydb.Errorf(deploydb.EINVALID, "subject.content.outcome is cancel: a cancelled run decides nothing; report the result of a run that finished (success, failure or error)")
		default:
			// The schema enumerates the outcomes; this is a new one.
			return nil, deploydb.Errorf(deploydb.EINVALID, "subject.content.outcome %s is not success, failure or error", short(c.Outcome))
		}
	}
	return in, nil
}

type customData struct {
	deployment int64
	service    string
	sourceURL  string
}

// parseCustomData reads the keys DeployDB understands in an object
// customData; other keys, and customData given as a (base64) string, are
// ignored.
func parseCustomData(raw json.RawMessage) (customData, error) {
	var out customData
	if len(raw) == 0 || raw[0] != '{' {
		return out, nil
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return out, deploydb.Errorf(deploydb.EINVALID, "customData: %v", err)
	}
	if v, ok := m["deployment"]; ok && string(v) != "null" {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n <= 0 {
			return out, deploydb.Errorf(deploydb.EINVALID, "customData.deployment must be a DeployDB deployment id (a positive integer), not %s", short(string(v)))
		}
		out.deployment = n
	}
	var err error
	if out.service, err = stringField(m, "service"); err != nil {
		return out, err
	}
	if out.sourceURL, err = stringField(m, "sourceUrl"); err != nil {
		return out, err
	}
	return out, nil
}

func stringField(m map[string]json.RawMessage, key string) (string, error) {
	v, ok := m[key]
	if !ok || string(v) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", deploydb.Errorf(deploydb.EINVALID, "customData.%s must be a string, not %s", key, short(string(v)))
	}
	return s, nil
}
