package cdevents_test

import (
	"strings"
	"testing"

	"github.com/deploydb/deploydb/cdevents"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

func TestPURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		group, artifact, vers string
		want                  string
	}{
		{"MavenSpecExample", "org.apache.xmlgraphics", "batik-anim", "1.9.1", "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1"},
		{"GenericNoDot", "acme", "api", "1.0.0", "pkg:generic/acme/api@1.0.0"},
		{"GenericSlashesAreSegments", "mygit.com/myorg", "myapp", "1.0", "pkg:generic/mygit.com/myorg/myapp@1.0"},
		{"PlusInVersion", "acme", "api", "1.0.0+build.7", "pkg:generic/acme/api@1.0.0%2Bbuild.7"},
		{"ColonInVersion", "com.example", "svc", "2:1.0-1", "pkg:maven/com.example/svc@2%3A1.0-1"},
		{"Unicode", "équipe", "café app", "1", "pkg:generic/%C3%A9quipe/caf%C3%A9%20app@1"},
		{"EmptySegmentsStayInOneSegment", "a//b", "n", "1", "pkg:generic/a%2F%2Fb/n@1"},
		{"LeadingSlash", "/lead", "n", "1", "pkg:generic/%2Flead/n@1"},
		{"DotSegments", ".", "..", "1", "pkg:maven/%2E/%2E%2E@1"},
		{"Delimiters", "team", "a/b", "v@1?#&=", "pkg:generic/team/a%2Fb@v%401%3F%23%26%3D"},
		{"PercentAndTilde", "t~m", "100%", "~1", "pkg:generic/t~m/100%25@~1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := cdevents.PURL(tt.group, tt.artifact, tt.vers)
			if got != tt.want {
				t.Fatalf("PURL(%q, %q, %q) = %q, want %q", tt.group, tt.artifact, tt.vers, got, tt.want)
			}
			p, err := cdevents.ParsePURL(got)
			if err != nil {
				t.Fatal(err)
			}
			if p.Group() != tt.group || p.Name != tt.artifact || p.Version != tt.vers {
				t.Fatalf("ParsePURL(%q) = group %q name %q version %q", got, p.Group(), p.Name, p.Version)
			}
		})
	}
}

func TestParsePURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		want  cdevents.PackageURL
		group string
	}{
		{"MavenSpecExample", "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1",
			cdevents.PackageURL{Type: "maven", Namespace: "org.apache.xmlgraphics", Name: "batik-anim", Version: "1.9.1"}, "org.apache.xmlgraphics"},
		{"GenericSpecExample", "pkg:generic/openssl@1.1.10g?download_url=https://openssl.org/source/openssl-1.1.0g.tar.gz&checksum=sha256:de4d501267da",
			cdevents.PackageURL{Type: "generic", Name: "openssl", Version: "1.1.10g", Qualifiers: map[string]string{
				"download_url": "https://openssl.org/source/openssl-1.1.0g.tar.gz", "checksum": "sha256:de4d501267da"}}, "generic"},
		{"EncodedQualifier", "pkg:generic/acme/api@1?download_url=https%3A%2F%2Fex.com%2Fa%20b.tgz",
			cdevents.PackageURL{Type: "generic", Namespace: "acme", Name: "api", Version: "1", Qualifiers: map[string]string{
				"download_url": "https://ex.com/a b.tgz"}}, "acme"},
		{"OCINoNamespace", "pkg:oci/myapp@sha256%3A0b31b1c0?repository_url=ghcr.io/org",
			cdevents.PackageURL{Type: "oci", Name: "myapp", Version: "sha256:0b31b1c0", Qualifiers: map[string]string{"repository_url": "ghcr.io/org"}}, "oci"},
		{"GolangSeveralSegments", "pkg:golang/mygit.com/myorg/myapp@234fd47e07d1004f0aed9c",
			cdevents.PackageURL{Type: "golang", Namespace: "mygit.com/myorg", Name: "myapp", Version: "234fd47e07d1004f0aed9c"}, "mygit.com/myorg"},
		{"NPMEncodedAt", "pkg:npm/%40angular/animation@12.3.1",
			cdevents.PackageURL{Type: "npm", Namespace: "@angular", Name: "animation", Version: "12.3.1"}, "@angular"},
		{"NPMLiteralAtInNamespace", "pkg:npm/@angular/core@12.3.1",
			cdevents.PackageURL{Type: "npm", Namespace: "@angular", Name: "core", Version: "12.3.1"}, "@angular"},
		{"TypeIsCaseInsensitive", "PKG:Maven/org.x/y@1",
			cdevents.PackageURL{Type: "maven", Namespace: "org.x", Name: "y", Version: "1"}, "org.x"},
		{"ExtraSlashes", "pkg://generic/a//b/c@1/",
			cdevents.PackageURL{Type: "generic", Namespace: "a/b", Name: "c", Version: "1"}, "a/b"},
		{"Subpath", "pkg:github/package-url/purl-spec@244fd47e07d1004#everybody/./loves/dogs",
			cdevents.PackageURL{Type: "github", Namespace: "package-url", Name: "purl-spec", Version: "244fd47e07d1004", Subpath: "everybody/loves/dogs"}, "package-url"},
		{"PlusIsLiteral", "pkg:generic/x/y@1+2",
			cdevents.PackageURL{Type: "generic", Namespace: "x", Name: "y", Version: "1+2"}, "x"},
		{"QualifierKeysLowerCaseEmptyDropped", "pkg:generic/x/y@1?Download_URL=https://a/b&empty=",
			cdevents.PackageURL{Type: "generic", Namespace: "x", Name: "y", Version: "1", Qualifiers: map[string]string{"download_url": "https://a/b"}}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cdevents.ParsePURL(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePURL(%q) (-want +got):\n%s", tt.in, diff)
			}
			if got.Group() != tt.group {
				t.Errorf("Group() = %q, want %q", got.Group(), tt.group)
			}
		})
	}
}

func TestParsePURL_Artifact(t *testing.T) {
	t.Parallel()
	p, err := cdevents.ParsePURL("pkg:generic/openssl@1.1.10g?download_url=https://openssl.org/source/openssl-1.1.0g.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	a := p.Artifact()
	if a.Group != "generic" || a.Name != "openssl" || a.Version != "1.1.10g" || a.SourceURL != "https://openssl.org/source/openssl-1.1.0g.tar.gz" {
		t.Fatalf("Artifact() = %+v", a)
	}
}

func TestParsePURL_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"ErrEmpty", "", `must start with "pkg:"`},
		{"ErrPlainName", "mySubject123", `must start with "pkg:"`},
		{"ErrHTTPURL", "https://example.com/x@1", `must start with "pkg:"`},
		{"ErrNoType", "pkg:", "no type"},
		{"ErrNoName", "pkg:generic", "no name"},
		{"ErrOnlyVersion", "pkg:generic/@1", "no name"},
		{"ErrNoVersion", "pkg:generic/x", "no version"},
		{"ErrEmptyVersion", "pkg:generic/x@", "no version"},
		{"ErrNoVersionAtInNamespace", "pkg:npm/@angular/core", "no version"},
		{"ErrTypeStartsWithDigit", "pkg:1abc/x@1", "type"},
		{"ErrTypeBadChar", "pkg:ge_neric/x@1", "type"},
		{"ErrBadEscape", "pkg:generic/x@%zz", "bad percent-encoding"},
		{"ErrNotUTF8", "pkg:generic/x@%ff", "not UTF-8"},
		{"ErrQualifierWithoutValue", "pkg:generic/x@1?novalue", "no value"},
		{"ErrQualifierTwice", "pkg:generic/x@1?a=1&a=2", "twice"},
		{"ErrQualifierKey", "pkg:generic/x@1?a%20b=1", "qualifier key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := cdevents.ParsePURL(tt.in)
			RequireInvalid(t, err, "is not a package URL", tt.want)
		})
	}
}

// purlText generates text rich in the characters a purl must encode.
func purlText() *rapid.Generator[string] {
	special := rapid.RuneFrom([]rune("/.@%+:?#&=~-_ aZ9éß日🚀\x00\t"))
	return rapid.StringOfN(rapid.OneOf(special, rapid.Rune()), 1, 40, -1)
}

func TestPURL_RoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		group := purlText().Draw(t, "group")
		name := purlText().Draw(t, "name")
		version := purlText().Draw(t, "version")
		s := cdevents.PURL(group, name, version)
		for _, c := range []byte(s) {
			plain := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~%:/@", c) >= 0
			if !plain {
				t.Fatalf("PURL = %q has an unencoded %q", s, c)
			}
		}
		wantType := "generic"
		if strings.Contains(group, ".") && !strings.Contains(group, "/") {
			wantType = "maven"
		}
		p, err := cdevents.ParsePURL(s)
		if err != nil {
			t.Fatalf("ParsePURL(%q): %v", s, err)
		}
		if p.Type != wantType || p.Group() != group || p.Name != name || p.Version != version || p.Qualifiers != nil || p.Subpath != "" {
			t.Fatalf("ParsePURL(PURL(%q, %q, %q)) = %+v (group %q)", group, name, version, p, p.Group())
		}
	})
}
