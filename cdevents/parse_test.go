package cdevents_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var acceptedTypes = []string{cdevents.ArtifactPublished, cdevents.ServiceDeployed, cdevents.ServiceUpgraded,
	cdevents.TestSuiteRunFinished, cdevents.TestCaseRunFinished}

func TestValidate_Conformance(t *testing.T) {
	t.Parallel()
	for _, name := range ConformanceNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := MustReadConformance(t, name)
			if err := cdevents.Validate(doc); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			typ, _ := At(MustDecode(t, doc), "context.type").(string)
			MustValidateFile(t, typ, doc)
		})
	}
}

func TestParse_Conformance(t *testing.T) {
	t.Parallel()
	conformanceTime := time.Date(2023, 3, 20, 14, 27, 5, 315384000, time.UTC)
	ctx := func(typ, kind string) cdevents.Inbound {
		return cdevents.Inbound{Type: typ, ID: "271069a8-fc18-44f1-b38f-9d70a1695819", Source: "/event/source/123", Time: conformanceTime, Kind: kind}
	}
	ociArtifact := deploydb.Artifact{Group: "oci", Name: "myapp", Version: "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"}
	tests := []struct {
		file string
		want func() cdevents.Inbound
	}{
		{"artifact_published", func() cdevents.Inbound {
			in := ctx(cdevents.ArtifactPublished, cdevents.KindArtifactPublished)
			in.Artifact = deploydb.Artifact{Group: "mygit.com/myorg", Name: "myapp", Version: "234fd47e07d1004f0aed9c"}
			return in
		}},
		{"service_deployed", func() cdevents.Inbound {
			in := ctx(cdevents.ServiceDeployed, cdevents.KindServiceDeployed)
			in.Artifact, in.Service, in.Environment = ociArtifact, "mySubject123", "test123"
			return in
		}},
		{"service_upgraded", func() cdevents.Inbound {
			in := ctx(cdevents.ServiceUpgraded, cdevents.KindServiceUpgraded)
			in.Artifact, in.Service, in.Environment = ociArtifact, "mySubject123", "test123"
			return in
		}},
		{"testsuiterun_finished", func() cdevents.Inbound {
			in := ctx(cdevents.TestSuiteRunFinished, cdevents.KindTestSuiteRunFinished)
			in.Promotion, in.Environment, in.Outcome, in.Status = "Auth TestSuite", "dev", "failure", deploydb.PromotionFailed
			return in
		}},
		{"testcaserun_finished", func() cdevents.Inbound {
			in := ctx(cdevents.TestCaseRunFinished, cdevents.KindTestCaseRunFinished)
			in.Promotion, in.Environment, in.Outcome, in.Status = "Login Test", "dev", "success", deploydb.PromotionSuccess
			return in
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			got, err := cdevents.Parse(MustReadConformance(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want()
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_ConformanceNotConsumed(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"incident_detected":    "dev.cdevents.incident.detected.0.3.0",
		"incident_resolved":    "dev.cdevents.incident.resolved.0.3.0",
		"pipelinerun_finished": "dev.cdevents.pipelinerun.finished.0.3.0",
		"environment_created":  cdevents.EnvironmentCreated,
		"artifact_packaged":    "dev.cdevents.artifact.packaged.0.3.0",
		"service_rolledback":   cdevents.ServiceRolledback,
	}
	for file, typ := range tests {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			_, err := cdevents.Parse(MustReadConformance(t, file))
			RequireInvalid(t, err, append([]string{"does not consume " + typ, "it accepts"}, acceptedTypes...)...)
		})
	}
}

// TestParse_Variants edits the conformance examples into the other shapes
// DeployDB maps.
func TestParse_Variants(t *testing.T) {
	t.Parallel()
	published := MustReadConformance(t, "artifact_published")
	suite := MustReadConformance(t, "testsuiterun_finished")
	testCase := MustReadConformance(t, "testcaserun_finished")
	deployed := MustReadConformance(t, "service_deployed")
	const openssl = "pkg:generic/openssl@1.1.10g?download_url=https://openssl.org/source/openssl-1.1.0g.tar.gz"

	tests := []struct {
		name  string
		doc   []byte
		check func(t *testing.T, in *cdevents.Inbound)
	}{
		{"SourceURLFromCustomData", MustEdit(t, published, "customData", map[string]any{"sourceUrl": "https://repo.example.com/myapp.tgz"}),
			func(t *testing.T, in *cdevents.Inbound) {
				want := deploydb.Artifact{Group: "mygit.com/myorg", Name: "myapp", Version: "234fd47e07d1004f0aed9c", SourceURL: "https://repo.example.com/myapp.tgz"}
				if diff := cmp.Diff(want, in.Artifact); diff != "" {
					t.Errorf("Artifact (-want +got):\n%s", diff)
				}
			}},
		{"SourceURLFromDownloadURL", MustEdit(t, published, "subject.id", openssl),
			func(t *testing.T, in *cdevents.Inbound) {
				want := deploydb.Artifact{Group: "generic", Name: "openssl", Version: "1.1.10g", SourceURL: "https://openssl.org/source/openssl-1.1.0g.tar.gz"}
				if diff := cmp.Diff(want, in.Artifact); diff != "" {
					t.Errorf("Artifact (-want +got):\n%s", diff)
				}
			}},
		{"CustomDataSourceURLWins", MustEdit(t, MustEdit(t, published, "subject.id", openssl), "customData", map[string]any{"sourceUrl": "https://mirror/o.tgz"}),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Artifact.SourceURL != "https://mirror/o.tgz" {
					t.Errorf("SourceURL = %q", in.Artifact.SourceURL)
				}
			}},
		{"Base64CustomDataIgnored", MustEdit(t, published, "customData", "eyJzb3VyY2VVcmwiOiJ4In0="),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Artifact.SourceURL != "" {
					t.Errorf("SourceURL = %q, want empty", in.Artifact.SourceURL)
				}
			}},
		{"DeploymentAndServiceFromCustomData", MustEdit(t, suite, "customData", map[string]any{"deployment": 42, "service": "billing", "other": []any{1}}),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Deployment != 42 || in.Service != "billing" {
					t.Errorf("Deployment = %d, Service = %q; want 42, billing", in.Deployment, in.Service)
				}
			}},
		{"ServiceEventDeployment", MustEdit(t, deployed, "customData", map[string]any{"deployment": 7}),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Deployment != 7 || in.Service != "mySubject123" {
					t.Errorf("Deployment = %d, Service = %q", in.Deployment, in.Service)
				}
			}},
		{"SuiteWithoutNameUsesID", MustEdit(t, suite, "subject.content.testSuite.name", nil),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Promotion != "92834723894" {
					t.Errorf("Promotion = %q, want the suite id", in.Promotion)
				}
			}},
		{"SuiteEmptyNameUsesID", MustEdit(t, suite, "subject.content.testSuite.name", ""),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Promotion != "92834723894" {
					t.Errorf("Promotion = %q, want the suite id", in.Promotion)
				}
			}},
		{"SuiteURI", MustEdit(t, suite, "subject.content.testSuite.uri", "https://ci.example.com/runs/17"),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.InfoURL != "https://ci.example.com/runs/17" {
					t.Errorf("InfoURL = %q", in.InfoURL)
				}
			}},
		{"CaseURIAndIDFallback", MustEdit(t, MustEdit(t, testCase, "subject.content.testCase.uri", "https://ci/case/1"), "subject.content.testCase.name", nil),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.InfoURL != "https://ci/case/1" || in.Promotion != "92834723894" {
					t.Errorf("InfoURL = %q, Promotion = %q", in.InfoURL, in.Promotion)
				}
			}},
		{"OutcomeSuccess", MustEdit(t, suite, "subject.content.outcome", "success"),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Status != deploydb.PromotionSuccess || in.Outcome != "success" {
					t.Errorf("Status = %q, Outcome = %q", in.Status, in.Outcome)
				}
			}},
		{"OutcomeErrorFails", MustEdit(t, testCase, "subject.content.outcome", "error"),
			func(t *testing.T, in *cdevents.Inbound) {
				if in.Status != deploydb.PromotionFailed || in.Outcome != "error" {
					t.Errorf("Status = %q, Outcome = %q", in.Status, in.Outcome)
				}
			}},
		{"LowerCaseTimestamp", MustEdit(t, deployed, "context.timestamp", "2023-03-20t14:27:05.5+01:00"),
			func(t *testing.T, in *cdevents.Inbound) {
				if want := time.Date(2023, 3, 20, 13, 27, 5, 5e8, time.UTC); !in.Time.Equal(want) || in.Time.Location() != time.UTC {
					t.Errorf("Time = %v, want %v", in.Time, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in, err := cdevents.Parse(tt.doc)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, tt.doc)
			}
			tt.check(t, in)
		})
	}
}

func TestParse_Invalid(t *testing.T) {
	t.Parallel()
	published := MustReadConformance(t, "artifact_published")
	deployed := MustReadConformance(t, "service_deployed")
	suite := MustReadConformance(t, "testsuiterun_finished")
	testCase := MustReadConformance(t, "testcaserun_finished")

	deepCustomData := []byte(strings.Replace(string(deployed), `"subject"`,
		`"customData": `+strings.Repeat(`{"a":`, 100)+`1`+strings.Repeat(`}`, 100)+`, "subject"`, 1))

	tests := []struct {
		name string
		doc  []byte
		want []string
	}{
		{"ErrEmpty", nil, []string{"not JSON"}},
		{"ErrJunk", []byte("hello"), []string{"not JSON"}},
		{"ErrTruncated", published[:len(published)/2], []string{"not JSON"}},
		{"ErrTrailingData", append(append([]byte{}, published...), '{'), []string{"not JSON"}},
		{"ErrNotUTF8Junk", []byte("\xff\xfe"), []string{"not JSON"}},
		{"ErrNull", []byte("null"), []string{"JSON object with context and subject", "null"}},
		{"ErrArray", []byte("[]"), []string{"not an array"}},
		{"ErrNoContext", []byte(`{"subject":{}}`), []string{"context is missing"}},
		{"ErrContextNotObject", []byte(`{"context":"x"}`), []string{"context must be an object", "a string"}},
		{"ErrNoType", MustEdit(t, published, "context.type", nil), []string{"context.type is missing"}},
		{"ErrTypeNotString", MustEdit(t, published, "context.type", 5), []string{"context.type must be a string", "a number"}},
		{"ErrUnknownType", MustEdit(t, published, "context.type", "dev.cdevents.foo.bar.0.1.0"), []string{`"dev.cdevents.foo.bar.0.1.0"`, "not a CDEvents 0.5.1 event type"}},
		{"ErrOtherVersion", MustEdit(t, deployed, "context.type", "dev.cdevents.service.deployed.0.1.0"), []string{"not a CDEvents 0.5.1 event type", "defines " + cdevents.ServiceDeployed}},
		{"ErrSpecVersionType", MustEdit(t, published, "context.specversion", 5), []string{"invalid " + cdevents.ArtifactPublished, "/context/specversion", "got number, want string"}},
		{"ErrNoSubject", MustEdit(t, published, "subject", nil), []string{"(document)", "missing property 'subject'"}},
		{"ErrExtraProperty", MustEdit(t, deployed, "extra", true), []string{"additional properties 'extra' not allowed"}},
		{"ErrTimestampFormat", MustEdit(t, deployed, "context.timestamp", "yesterday"), []string{"/context/timestamp", "date-time"}},
		{"ErrSourceFormat", MustEdit(t, deployed, "context.source", "http://a b"), []string{"/context/source", "uri-reference"}},
		{"ErrLongValueCut", MustEdit(t, deployed, "context.source", "http://a b/"+strings.Repeat("x", 100000)), []string{"/context/source", "..."}},
		{"ErrBadLink", MustEdit(t, deployed, "context.links", []any{map[string]any{"linkType": "SIDEWAYS"}}),
			[]string{"/context/links/0: matches none of the allowed shapes (/linkType: value must be 'END'", "missing properties 'linkKind', 'target'"}},
		{"ErrSubjectIDNotPURL", MustEdit(t, published, "subject.id", "x"), []string{`subject.id "x" is not a package URL`, `must start with "pkg:"`}},
		{"ErrSubjectIDNoVersion", MustEdit(t, published, "subject.id", "pkg:generic/acme/x"), []string{`subject.id "pkg:generic/acme/x" is not a package URL`, "no version"}},
		{"ErrArtifactIDNotPURL", MustEdit(t, deployed, "subject.content.artifactId", "myapp:1.0"), []string{`subject.content.artifactId "myapp:1.0" is not a package URL`}},
		{"ErrNoEnvironment", MustEdit(t, deployed, "subject.content.environment", nil), []string{"/subject/content", "missing property 'environment'"}},
		{"ErrCancel", MustEdit(t, suite, "subject.content.outcome", "cancel"), []string{"cancel", "decides nothing"}},
		{"ErrCaseCancel", MustEdit(t, testCase, "subject.content.outcome", "cancel"), []string{"cancel", "decides nothing"}},
		{"ErrOutcomeNotInSchema", MustEdit(t, suite, "subject.content.outcome", "pass"), []string{"/subject/content/outcome"}},
		{"ErrNoTestSuite", MustEdit(t, suite, "subject.content.testSuite", nil), []string{"subject.content.testSuite is missing", "promotion"}},
		{"ErrNoTestCase", MustEdit(t, testCase, "subject.content.testCase", nil), []string{"subject.content.testCase is missing"}},
		{"ErrDeploymentString", MustEdit(t, suite, "customData", map[string]any{"deployment": "42"}), []string{"customData.deployment", "positive integer", `"\"42\""`}},
		{"ErrDeploymentNegative", MustEdit(t, suite, "customData", map[string]any{"deployment": -1}), []string{"customData.deployment"}},
		{"ErrDeploymentFraction", MustEdit(t, suite, "customData", map[string]any{"deployment": 1.5}), []string{"customData.deployment"}},
		{"ErrDeploymentHuge", []byte(strings.Replace(string(suite), `"subject"`, `"customData": {"deployment": 99999999999999999999}, "subject"`, 1)), []string{"customData.deployment"}},
		{"ErrServiceNotString", MustEdit(t, suite, "customData", map[string]any{"service": 5}), []string{"customData.service must be a string"}},
		{"ErrSourceURLNotString", MustEdit(t, published, "customData", map[string]any{"sourceUrl": []any{}}), []string{"customData.sourceUrl must be a string"}},
		{"ErrCustomDataNumber", MustEdit(t, published, "customData", 5), []string{"/customData: matches none of the allowed shapes (got number, want object; got number, want string)"}},
		{"ErrHuge", bytes.Repeat([]byte(" "), cdevents.MaxDocumentSize+1), []string{"at most 1048576"}},
		{"ErrDeepCustomData", deepCustomData, []string{"nested deeper than 64"}},
		{"ErrDeepArrays", []byte(strings.Repeat("[", 100000)), []string{"nested deeper than 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in, err := cdevents.Parse(tt.doc)
			if in != nil {
				t.Errorf("Parse returned %+v with the error", in)
			}
			RequireInvalid(t, err, tt.want...)
		})
	}
}

// TestParse_DepthInStrings: brackets inside strings are not nesting.
func TestParse_DepthInStrings(t *testing.T) {
	t.Parallel()
	doc := MustEdit(t, MustReadConformance(t, "service_deployed"), "customData",
		map[string]any{"note": strings.Repeat(`[{\"`, 1000)})
	if _, err := cdevents.Parse(doc); err != nil {
		t.Fatal(err)
	}
}

func TestValidate_FieldErrors(t *testing.T) {
	t.Parallel()
	doc := MustEdit(t, MustEdit(t, MustReadConformance(t, "service_deployed"), "subject.id", ""), "context.specversion", 1)
	err := cdevents.Validate(doc)
	var e *deploydb.Error
	if !errors.As(err, &e) || e.Code != deploydb.EINVALID {
		t.Fatalf("err = %v", err)
	}
	got := map[string]bool{}
	for _, f := range e.Fields {
		got[f.Field] = true
	}
	if !got["/subject/id"] || !got["/context/specversion"] || len(e.Fields) != 2 {
		t.Errorf("Fields = %+v, want /subject/id and /context/specversion", e.Fields)
	}
	if !strings.Contains(e.Message, "/context/specversion: got number, want string (and 1 more)") {
		t.Errorf("Message = %q, want the first problem by pointer, and a count of the other", e.Message)
	}
	for range 20 {
		if again := deploydb.ErrorMessage(cdevents.Validate(doc)); again != e.Message {
			t.Fatalf("Message changed from %q to %q", e.Message, again)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range ConformanceNames(f) {
		doc := MustReadConformance(f, name)
		f.Add(doc)
		f.Add(MustEdit(f, doc, "customData", map[string]any{"deployment": 3, "service": "s", "sourceUrl": "https://x"}))
	}
	f.Add([]byte(`{"context":{"type":"dev.cdevents.artifact.published.0.3.0"}}`))
	// Schemas compiled from the files on disk, for a differential check.
	fileSchemas := map[string]*jsonschema.Schema{}
	for _, typ := range acceptedTypes {
		fileSchemas[typ] = MustFileSchema(f, typ)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		in, err := cdevents.Parse(doc)
		if err != nil {
			var e *deploydb.Error
			if !errors.As(err, &e) || e.Code != deploydb.EINVALID || e.Message == "" {
				t.Fatalf("Parse error %v is not an EINVALID *deploydb.Error", err)
			}
			if in != nil {
				t.Fatal("Parse returned an event with its error")
			}
			return
		}
		// What Parse accepts, the schema compiled from the files accepts.
		inst, jerr := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		if jerr != nil {
			t.Fatalf("Parse accepted what is not JSON: %v", jerr)
		}
		sch := fileSchemas[in.Type]
		if sch == nil {
			t.Fatalf("Parse accepted type %q", in.Type)
		}
		if serr := sch.Validate(inst); serr != nil {
			t.Fatalf("Parse accepted what the %s schema refuses: %v", in.Type, serr)
		}
		switch in.Kind {
		case cdevents.KindArtifactPublished, cdevents.KindServiceDeployed, cdevents.KindServiceUpgraded:
			if in.Artifact.Group == "" || in.Artifact.Name == "" || in.Artifact.Version == "" {
				t.Fatalf("%s without a full artifact: %+v", in.Kind, in.Artifact)
			}
		case cdevents.KindTestSuiteRunFinished, cdevents.KindTestCaseRunFinished:
			if in.Promotion == "" || in.Environment == "" {
				t.Fatalf("%s without promotion or environment: %+v", in.Kind, in)
			}
			if in.Status != deploydb.PromotionSuccess && in.Status != deploydb.PromotionFailed {
				t.Fatalf("%s with status %q", in.Kind, in.Status)
			}
		default:
			t.Fatalf("Parse accepted kind %q", in.Kind)
		}
		if in.Time.IsZero() || in.ID == "" {
			t.Fatalf("accepted without time or id: %+v", in)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	doc := MustReadConformance(b, "testsuiterun_finished")
	for b.Loop() {
		if _, err := cdevents.Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}
