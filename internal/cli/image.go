package cli

import (
	"fmt"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/internal/images"
)

// newImage is `quartet image`: the data dir's image store, shared by every
// node of the machine. It works on the store directly, with or without a
// running quartet.
func newImage() *cobra.Command {
	var dataDir string
	c := &cobra.Command{
		Use:   "image",
		Short: "Pull, load, list and remove images in the data dir's image store",
	}
	c.PersistentFlags().StringVar(&dataDir, "data-dir", datadir.Running(), "data dir whose image store to use (default: $QUARTET_DATA_DIR, the directory of $KUBECONFIG when quartet runs there, or ~/.quartet)")
	c.AddCommand(newImagePull(&dataDir), newImageLoad(&dataDir), newImageList(&dataDir), newImageRemove(&dataDir))
	return c
}

// openStore opens the image store of the data dir a flag names.
func openStore(dataDir *string) (*images.Store, error) {
	return images.Open(datadir.Dir(*dataDir).ImageStore())
}

func newImagePull(dataDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image (HTTPS; plain HTTP for localhost and 127.0.0.0/8 registries; mirrors and credentials from <data-dir>/registries.yaml)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(dataDir)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			regs, err := images.LoadRegistries(datadir.Dir(*dataDir).Registries())
			if err != nil {
				return err
			}
			start := time.Now()
			im, err := s.Pull(ctx, args[0], images.PullOptions{Registries: regs})
			if err != nil {
				return fmt.Errorf("pulling %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%d bytes in %s\n", im.Ref, im.Digest, im.Size, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func newImageLoad(dataDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "load FILE",
		Short: "Load the images of a `docker save` archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(dataDir)
			if err != nil {
				return err
			}
			ims, err := s.Load(args[0])
			if err != nil {
				return err
			}
			for _, im := range ims {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", im.Ref, im.Digest)
			}
			return nil
		},
	}
}

func newImageList(dataDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the images in the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStore(dataDir)
			if err != nil {
				return err
			}
			list, err := s.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tDIGEST\tSIZE\tPULLED")
			for _, im := range list {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", im.Ref, im.Digest, im.Size, im.Pulled.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
}

func newImageRemove(dataDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF",
		Short: "Remove an image, and the layers no other image uses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(dataDir)
			if err != nil {
				return err
			}
			if err := s.Remove(args[0], nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
}
