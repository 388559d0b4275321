package cli

import (
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) artifactCommand() *cobra.Command {
	cmd := groupCommand("artifact", "Publish and read artifacts",
		`Publish artifacts (CI does this after a build) and read them back.

Publishing an artifact starts one flow for every service that consumes its
group:name, and activates the first environment of each flow's pipeline.`)
	cmd.AddCommand(a.artifactPublishCommand(), a.artifactGetCommand(), a.artifactListCommand(), a.artifactLatestCommand())
	return cmd
}

func (a *app) artifactPublishCommand() *cobra.Command {
	var in deploydb.Artifact
	var key string
	cmd := &cobra.Command{
		Use:   "publish [GROUP:NAME:VERSION] --source-url URL",
		Short: "Publish an artifact",
		Long: `Publish an artifact, named either by GROUP:NAME:VERSION (the version may
contain colons) or by --group, --name and --version.

Artifacts are immutable: publishing a version that exists fails with exit
status 5 ("already exists"). A CI job that retries a publish after a network
error can therefore treat exit 5 as "the first attempt went through"; with
--idempotency-key, a server that honours the key answers a retry with the
first response instead.`,
		Example: `  deploydb artifact publish com.example:billing:1.4.2 --source-url https://repo.example.com/billing-1.4.2.jar
  deploydb artifact publish --group com.example --name billing --version 1.4.2 \
      --source-url https://repo.example.com/billing-1.4.2.jar -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes at most one argument, GROUP:NAME:VERSION; got %d", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			art, err := publishArgs(args, in)
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			out, err := c.PublishArtifact(c.ctx, art, client.IdempotencyKey(key))
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return artifactTable(w, []*deploydb.Artifact{out}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Group, "group", "", "artifact group, such as com.example")
	f.StringVar(&in.Name, "name", "", "artifact name, such as billing")
	f.StringVar(&in.Version, "version", "", "artifact version, such as 1.4.2")
	f.StringVar(&in.SourceURL, "source-url", "", "where the artifact can be downloaded (required)")
	f.StringVar(&key, "idempotency-key", "", "send this Idempotency-Key, so that a retry is answered with the first response")
	return cmd
}

// publishArgs returns the artifact to publish from the optional
// GROUP:NAME:VERSION argument and the flags.
func publishArgs(args []string, flags deploydb.Artifact) (deploydb.Artifact, error) {
	a := flags
	if len(args) == 1 {
		if a.Group != "" || a.Name != "" || a.Version != "" {
			return a, usagef("give GROUP:NAME:VERSION or --group, --name and --version, not both")
		}
		var err error
		if a.Group, a.Name, a.Version, err = parseCoordinates(args[0]); err != nil {
			return a, err
		}
	}
	var missing []string
	for _, m := range []struct{ flag, value string }{
		{"--group", a.Group}, {"--name", a.Name}, {"--version", a.Version}, {"--source-url", a.SourceURL},
	} {
		if m.value == "" {
			missing = append(missing, m.flag)
		}
	}
	if len(missing) > 0 {
		return a, usagef("missing %s", strings.Join(missing, ", "))
	}
	return a, nil
}

// parseCoordinates splits GROUP:NAME:VERSION; the version may hold colons.
func parseCoordinates(s string) (group, name, version string, err error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", usagef("artifact %q must be GROUP:NAME:VERSION", s)
	}
	return parts[0], parts[1], parts[2], nil
}

// parseModule splits GROUP:NAME at its last colon, as the server does.
func parseModule(s string) (group, name string, err error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return "", "", usagef("module %q must be GROUP:NAME", s)
	}
	return s[:i], s[i+1:], nil
}

// parseID parses a numeric id argument.
func parseID(what, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, usagef("%s must be a positive integer, not %q", what, s)
	}
	return n, nil
}

func (a *app) artifactGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one artifact",
		Example: `  deploydb artifact get 42`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("artifact ID", args[0])
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			art, err := c.Artifact(c.ctx, id)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return artifactTable(w, []*deploydb.Artifact{art}) })
		},
	}
}

func (a *app) artifactListCommand() *cobra.Command {
	var f deploydb.ArtifactFilter
	var module string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List artifacts, newest first",
		Long: `List artifacts, newest first: all of them, those whose group, name or version
contains --query, or the versions of one --module.`,
		Example: `  deploydb artifact list --query billing
  deploydb artifact list --module com.example:billing --per-page 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if module != "" {
				if f.Query != "" {
					return usagef("give --module or --query, not both")
				}
				var err error
				if f.Group, f.Name, err = parseModule(module); err != nil {
					return err
				}
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			list, err := c.Artifacts(c.ctx, f)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return artifactTable(w, list) })
		},
	}
	cmd.Flags().StringVar(&f.Query, "query", "", "only artifacts whose group, name or version contains this")
	cmd.Flags().StringVar(&module, "module", "", "only the versions of GROUP:NAME")
	pageFlags(cmd, &f.Page)
	return cmd
}

func (a *app) artifactLatestCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "latest GROUP:NAME",
		Short:   "Show the newest artifact of a module",
		Example: `  deploydb artifact latest com.example:billing -o json`,
		Args:    exactArgs("GROUP:NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, name, err := parseModule(args[0])
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			art, err := c.LatestArtifact(c.ctx, group, name)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return artifactTable(w, []*deploydb.Artifact{art}) })
		},
	}
}

// pageFlags adds --page and --per-page to a list command.
func pageFlags(cmd *cobra.Command, p *deploydb.Page) {
	cmd.Flags().IntVar(&p.Number, "page", 0, "page number, from 0")
	cmd.Flags().IntVar(&p.Size, "per-page", 0, "results per page, 1 to 1000 (default: the server's, 20)")
}
