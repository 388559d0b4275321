package cdevents_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
	"github.com/google/go-cmp/cmp"
)

// completedAt is a time off UTC with sub-millisecond digits, to see the
// timestamp written in UTC with milliseconds.
var completedAt = time.Date(2024, 5, 1, 14, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))

const wantTimestamp = "2024-05-01T12:00:00.123Z"

func TestServiceEvent_MarshalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		typ                  string
		source               string
		service, environment string
		artifact             deploydb.Artifact
		deployment           int64
		wantArtifactID       string
		wantCustomData       map[string]any
	}{
		{"MavenDeployed", cdevents.ServiceDeployed, "https://deploydb.example.com", "billing", "production",
			deploydb.Artifact{Group: "org.apache.xmlgraphics", Name: "batik-anim", Version: "1.9.1"}, 0,
			"pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1", nil},
		{"SlashGroupUpgraded", cdevents.ServiceUpgraded, "/deploydb", "api", "staging",
			deploydb.Artifact{Group: "mygit.com/myorg", Name: "myapp", Version: "1.0.0+build.7", SourceURL: "https://ci.example.com/myapp-1.0.0.tgz"}, 42,
			"pkg:generic/mygit.com/myorg/myapp@1.0.0%2Bbuild.7",
			map[string]any{"deployment": 42.0, "sourceUrl": "https://ci.example.com/myapp-1.0.0.tgz"}},
		{"UnicodeRolledback", cdevents.ServiceRolledback, "https://deploydb.example.com/", "サービス", "préprod",
			deploydb.Artifact{Group: "équipe", Name: "café app", Version: "sha256:0b31b1c0"}, 7,
			"pkg:generic/%C3%A9quipe/caf%C3%A9%20app@sha256%3A0b31b1c0",
			map[string]any{"deployment": 7.0}},
		{"EpochVersion", cdevents.ServiceDeployed, "urn:deploydb:prod", "svc", "prod",
			deploydb.Artifact{Group: "com.example", Name: "svc", Version: "2:1.0-1"}, 0,
			"pkg:maven/com.example/svc@2%3A1.0-1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := cdevents.ServiceEvent{Type: tt.typ, ID: "deploydb-" + tt.name, Source: tt.source, Time: completedAt,
				Service: tt.service, Environment: tt.environment, Artifact: tt.artifact, Deployment: tt.deployment}
			doc, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := cdevents.Validate(doc); err != nil {
				t.Fatalf("Validate: %v\n%s", err, doc)
			}
			MustValidateFile(t, tt.typ, doc)

			m := MustDecode(t, doc)
			want := map[string]any{
				"context.specversion":                "0.5.1",
				"context.id":                         "deploydb-" + tt.name,
				"context.source":                     tt.source,
				"context.type":                       tt.typ,
				"context.timestamp":                  wantTimestamp,
				"subject.id":                         tt.service,
				"subject.source":                     tt.source,
				"subject.content.environment.id":     tt.environment,
				"subject.content.environment.source": tt.source,
				"subject.content.artifactId":         tt.wantArtifactID,
			}
			for path, w := range want {
				if got := At(m, path); got != w {
					t.Errorf("%s = %#v, want %#v", path, got, w)
				}
			}
			if tt.wantCustomData == nil {
				if _, ok := m["customData"]; ok {
					t.Errorf("customData = %v, want none", m["customData"])
				}
			} else {
				if diff := cmp.Diff(tt.wantCustomData, m["customData"]); diff != "" {
					t.Errorf("customData (-want +got):\n%s", diff)
				}
				if got := m["customDataContentType"]; got != "application/json" {
					t.Errorf("customDataContentType = %v", got)
				}
			}
		})
	}
}

// TestServiceEvent_ParseRoundTrip: what DeployDB emits as deployed or
// upgraded, DeployDB (or another DeployDB) can ingest as the same facts.
func TestServiceEvent_ParseRoundTrip(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{cdevents.ServiceDeployed, cdevents.ServiceUpgraded} {
		ev := cdevents.ServiceEvent{Type: typ, ID: "e1", Source: "/deploydb", Time: completedAt, Service: "billing", Environment: "prod",
			Artifact: deploydb.Artifact{Group: "a//b/c", Name: "n@1", Version: "1+x", SourceURL: "https://x/y"}, Deployment: 9}
		doc, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		in, err := cdevents.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		want := &cdevents.Inbound{Type: typ, ID: "e1", Source: "/deploydb", Time: completedAt.UTC().Truncate(time.Millisecond),
			Kind: typ[len("dev.cdevents.") : len(typ)-len(".0.3.0")], Artifact: ev.Artifact, Service: "billing", Environment: "prod", Deployment: 9}
		if diff := cmp.Diff(want, in); diff != "" {
			t.Errorf("%s: Parse (-want +got):\n%s", typ, diff)
		}
	}
}

func TestServiceEvent_MarshalJSON_Errors(t *testing.T) {
	t.Parallel()
	ok := cdevents.ServiceEvent{Type: cdevents.ServiceDeployed, ID: "e1", Source: "/deploydb", Time: completedAt,
		Service: "billing", Environment: "prod", Artifact: deploydb.Artifact{Group: "g", Name: "n", Version: "1"}}
	if _, err := ok.MarshalJSON(); err != nil {
		t.Fatalf("the base case fails: %v", err)
	}
	tests := []struct {
		name string
		edit func(*cdevents.ServiceEvent)
		want []string
	}{
		{"ErrType", func(e *cdevents.ServiceEvent) { e.Type = cdevents.EnvironmentCreated }, []string{"not a service event type"}},
		{"ErrOldVersion", func(e *cdevents.ServiceEvent) { e.Type = "dev.cdevents.service.deployed.0.1.0" }, []string{"not a service event type"}},
		{"ErrNoService", func(e *cdevents.ServiceEvent) { e.Service = "" }, []string{"/subject/id", "minLength"}},
		{"ErrNoEnvironment", func(e *cdevents.ServiceEvent) { e.Environment = "" }, []string{"/subject/content/environment/id"}},
		{"ErrNoID", func(e *cdevents.ServiceEvent) { e.ID = "" }, []string{"/context/id"}},
		{"ErrSourceNotURIReference", func(e *cdevents.ServiceEvent) { e.Source = "http://deploy db" }, []string{"/context/source", "uri-reference"}},
		{"ErrNoTime", func(e *cdevents.ServiceEvent) { e.Time = time.Time{} }, []string{"no time"}},
		{"ErrNoVersion", func(e *cdevents.ServiceEvent) { e.Artifact.Version = "" }, []string{"group, a name and a version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := ok
			tt.edit(&ev)
			_, err := json.Marshal(ev)
			RequireInvalid(t, err, tt.want...)
		})
	}
}

func TestEnvironmentEvent_MarshalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		typ         string
		environment string
		description string
	}{
		{"Created", cdevents.EnvironmentCreated, "production", "Customer-facing, eu-west-1"},
		{"CreatedNoDescription", cdevents.EnvironmentCreated, "staging", ""},
		{"ModifiedUnicode", cdevents.EnvironmentModified, "préprod-東京", "now with <html> & \"quotes\""},
		{"Deleted", cdevents.EnvironmentDeleted, "qa", "retired"},
		{"DeletedNoDescription", cdevents.EnvironmentDeleted, "dev", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := cdevents.EnvironmentEvent{Type: tt.typ, ID: "env-" + tt.name, Source: "https://deploydb.example.com",
				Time: completedAt, Environment: tt.environment, Description: tt.description}
			doc, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := cdevents.Validate(doc); err != nil {
				t.Fatalf("Validate: %v\n%s", err, doc)
			}
			MustValidateFile(t, tt.typ, doc)

			m := MustDecode(t, doc)
			want := map[string]any{
				"context.specversion":  "0.5.1",
				"context.type":         tt.typ,
				"context.id":           "env-" + tt.name,
				"context.timestamp":    wantTimestamp,
				"subject.id":           tt.environment,
				"subject.source":       "https://deploydb.example.com",
				"subject.content.name": tt.environment,
			}
			for path, w := range want {
				if got := At(m, path); got != w {
					t.Errorf("%s = %#v, want %#v", path, got, w)
				}
			}
			content, _ := At(m, "subject.content").(map[string]any)
			if len(content) != 1 {
				t.Errorf("subject.content = %v, want only the name (no url DeployDB does not have)", content)
			}
			if tt.description == "" {
				if _, ok := m["customData"]; ok {
					t.Errorf("customData = %v, want none", m["customData"])
				}
			} else if got := At(m, "customData.description"); got != tt.description {
				t.Errorf("customData.description = %#v, want %q", got, tt.description)
			}
		})
	}
}

func TestEnvironmentEvent_MarshalJSON_Errors(t *testing.T) {
	t.Parallel()
	_, err := json.Marshal(cdevents.EnvironmentEvent{Type: cdevents.ServiceDeployed, ID: "e", Source: "/d", Time: completedAt, Environment: "x"})
	RequireInvalid(t, err, "not an environment event type")
	_, err = json.Marshal(cdevents.EnvironmentEvent{Type: cdevents.EnvironmentDeleted, ID: "e", Source: "/d", Time: completedAt})
	RequireInvalid(t, err, "/subject/id")
}

func BenchmarkServiceEvent_MarshalJSON(b *testing.B) {
	ev := cdevents.ServiceEvent{Type: cdevents.ServiceDeployed, ID: "e1", Source: "https://deploydb.example.com", Time: completedAt,
		Service: "billing", Environment: "production", Artifact: deploydb.Artifact{Group: "com.example", Name: "billing", Version: "1.4.2"}}
	for b.Loop() {
		if _, err := ev.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCompile: the embedded schemas compile, and the events validate
// against them after.
func TestCompile(t *testing.T) {
	t.Parallel()
	if err := cdevents.Compile(); err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(cdevents.EnvironmentEvent{Type: cdevents.EnvironmentCreated, ID: "e", Source: "/d", Time: completedAt, Environment: "x"}); err != nil {
		t.Fatal(err)
	}
}
