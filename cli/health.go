package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func (a *app) healthCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check that the server is up",
		Long: `Check that the server is up and answering: exit 0 and print "ok", or exit 7
when it cannot be reached. Scripts can wait for a server with it:

  until deploydb health >/dev/null 2>&1; do sleep 1; done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			if err := c.Health(c.ctx); err != nil {
				return err
			}
			return c.print(func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "ok: %s\n", c.BaseURL())
				return err
			})
		},
	}
}
