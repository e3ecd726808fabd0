package configapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

func cmdPush(ctx context.Context, cc *cmdCtx, args []string) error {
	typ := cc.fs.String("type", "", "content `type`: json, yaml, toml, xml, ini, tar (a bundle of files), raw, text or a media type (default: from FILE's extension: .json .yaml .yml .toml .xml .ini .tar; anything else, .conf included, is text/plain and unchecked)")
	ifMatch := cc.fs.Int64("if-match", -1, "only push if the latest version is `N` (0 = the config must not exist yet)")
	author := cc.fs.String("author", "", "`name` recorded with the version (default: the token's name)")
	pos, err := cc.parse(args, "NAME FILE [--type T] [--if-match N] [--author A]", 2, 2)
	if err != nil {
		return err
	}
	name, file := pos[0], pos[1]
	var data []byte
	if file == "-" {
		data, err = readAllLimited(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("reading %q: %w", file, err)
	}
	c, err := cc.client()
	if err != nil {
		return err
	}
	opts := PushOptions{ContentType: pushContentType(*typ, file), Author: *author}
	if *ifMatch >= 0 {
		opts.IfMatch = ifMatch
	}
	rctx, cancel := cc.reqCtx(ctx)
	defer cancel()
	v, created, err := c.PushWith(rctx, name, data, opts)
	if err != nil {
		return err
	}
	return cc.printPut(v, created)
}

// putResult is push's and rollback's --json output.
type putResult struct {
	store.Version
	Created bool `json:"created"`
}

func (cc *cmdCtx) printPut(v store.Version, created bool) error {
	if cc.cf.json {
		return cc.printJSON(putResult{Version: v, Created: created})
	}
	if created {
		fmt.Fprintf(cc.stdout, "%s: version %d created (%d bytes, sha256 %s)\n", v.Name, v.Version, v.Size, short(v.SHA256))
	} else {
		fmt.Fprintf(cc.stdout, "%s: unchanged, identical to version %d\n", v.Name, v.Version)
	}
	return nil
}

func cmdGet(ctx context.Context, cc *cmdCtx, args []string) error {
	version := cc.fs.Int64("version", 0, "get version `N` instead of the latest")
	out := cc.fs.String("o", "", "write the content to `file` (default stdout)")
	pos, c, rctx, cancel, err := cc.begin(ctx, args, "NAME [--version N] [-o FILE]", 1, 1)
	if err != nil {
		return err
	}
	defer cancel()
	v, err := c.Get(rctx, pos[0], *version)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeFileAtomic(*out, v.Data); err != nil {
			return err
		}
		if !cc.cf.json {
			fmt.Fprintf(cc.stderr, "%s: version %d written to %s\n", v.Name, v.Version, *out)
			return nil
		}
	}
	if cc.cf.json {
		type getResult struct {
			store.Version
			Content string `json:"content,omitempty"`
			Binary  bool   `json:"binary,omitempty"`
		}
		r := getResult{Version: v}
		if utf8.Valid(v.Data) {
			r.Content = string(v.Data)
		} else {
			r.Binary = true
		}
		return cc.printJSON(r)
	}
	if *out == "" {
		_, err = cc.stdout.Write(v.Data)
	}
	return err
}

func cmdHistory(ctx context.Context, cc *cmdCtx, args []string) error {
	pos, c, rctx, cancel, err := cc.begin(ctx, args, "NAME", 1, 1)
	if err != nil {
		return err
	}
	defer cancel()
	vs, err := c.History(rctx, pos[0])
	if err != nil {
		return err
	}
	if cc.cf.json {
		return cc.printJSON(vs)
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCREATED\tAUTHOR\tSIZE\tTYPE\tSHA256")
	for _, v := range vs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", v.Version, v.Created.UTC().Format(time.RFC3339), dash(v.Author), v.Size, v.ContentType, short(v.SHA256))
	}
	return tw.Flush()
}

func cmdRollback(ctx context.Context, cc *cmdCtx, args []string) error {
	to := cc.fs.Int64("to", 0, "version `N` whose content becomes the newest version (required)")
	pos, err := cc.parse(args, "NAME --to N", 1, 1)
	if err != nil {
		return err
	}
	if *to <= 0 {
		return errors.New("--to: give the version to roll back to (≥ 1)")
	}
	c, err := cc.client()
	if err != nil {
		return err
	}
	rctx, cancel := cc.reqCtx(ctx)
	defer cancel()
	v, err := c.Rollback(rctx, pos[0], *to)
	if err != nil {
		return err
	}
	return cc.printPut(v, true)
}

func cmdStatus(ctx context.Context, cc *cmdCtx, args []string) error {
	pos, c, rctx, cancel, err := cc.begin(ctx, args, "NAME", 1, 1)
	if err != nil {
		return err
	}
	defer cancel()
	rep, err := c.Status(rctx, pos[0])
	if err != nil {
		return err
	}
	if cc.cf.json {
		return cc.printJSON(rep)
	}
	fmt.Fprintf(cc.stdout, "%s: latest version %d, %d sidecar(s)\n", rep.Name, rep.Latest, len(rep.Sidecars))
	if len(rep.Sidecars) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIDECAR\tVERSION\tOUTCOME\tTIME\tERROR")
	for _, s := range rep.Sidecars {
		ver := strconv.FormatInt(s.Version, 10)
		if s.Version != rep.Latest {
			ver += " (behind)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Sidecar, ver, s.Outcome, s.Time.UTC().Format(time.RFC3339), dash(s.Error))
	}
	return tw.Flush()
}

func cmdList(ctx context.Context, cc *cmdCtx, args []string) error {
	_, c, rctx, cancel, err := cc.begin(ctx, args, "", 0, 0)
	if err != nil {
		return err
	}
	defer cancel()
	vs, err := c.List(rctx)
	if err != nil {
		return err
	}
	if cc.cf.json {
		return cc.printJSON(vs)
	}
	tw := tabwriter.NewWriter(cc.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tCREATED\tAUTHOR\tSIZE\tTYPE")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", v.Name, v.Version, v.Created.UTC().Format(time.RFC3339), dash(v.Author), v.Size, v.ContentType)
	}
	return tw.Flush()
}

func cmdWatch(ctx context.Context, cc *cmdCtx, args []string) error {
	after := cc.fs.Int64("after", 0, "print versions newer than `N` only (default 0: the current one first)")
	wait := cc.fs.Duration("wait", 60*time.Second, "long-poll `duration` per request")
	pos, err := cc.parse(args, "NAME [--after N]", 1, 1)
	if err != nil {
		return err
	}
	c, err := cc.client()
	if err != nil {
		return err
	}
	name, cur := pos[0], *after
	backoff := time.Second
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, *wait+30*time.Second)
		v, changed, err := c.Watch(rctx, name, cur, *wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case IsStatus(err, http.StatusUnauthorized), IsStatus(err, http.StatusForbidden), IsStatus(err, http.StatusBadRequest):
			return err
		case err != nil:
			fmt.Fprintf(cc.stderr, "watch %q: %v (retrying in %s)\n", name, err, backoff)
			if !sleepCtx(ctx, backoff) {
				return nil
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = time.Second
		if !changed {
			continue
		}
		cur = v.Version
		if cc.cf.json {
			if err := cc.printJSON(v); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(cc.stdout, "%s %s: version %d (%d bytes, sha256 %s, author %s)\n",
			time.Now().UTC().Format(time.RFC3339), v.Name, v.Version, v.Size, short(v.SHA256), dash(v.Author))
	}
	return nil
}

func cmdSchema(ctx context.Context, cc *cmdCtx, args []string) error {
	pos, c, rctx, cancel, err := cc.begin(ctx, args, "NAME [FILE]  (register FILE as NAME's JSON Schema; without FILE print it)", 1, 2)
	if err != nil {
		return err
	}
	defer cancel()
	if len(pos) == 1 {
		b, err := c.GetSchema(rctx, pos[0])
		if err != nil {
			return err
		}
		_, err = cc.stdout.Write(b)
		return err
	}
	data, err := os.ReadFile(pos[1])
	if err != nil {
		return fmt.Errorf("reading %q: %w", pos[1], err)
	}
	if err := c.PutSchema(rctx, pos[0], data); err != nil {
		return err
	}
	if cc.cf.json {
		return cc.printJSON(map[string]any{"name": pos[0], "registered": true})
	}
	fmt.Fprintf(cc.stdout, "%s: schema registered\n", pos[0])
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readAllLimited reads r up to 64 MiB.
func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxClientResponse+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxClientResponse {
		return nil, errors.New("input larger than 64 MiB")
	}
	return b, nil
}

// writeFileAtomic writes data to file through a temporary file in the same
// directory and a rename, so readers never see half a config.
func writeFileAtomic(file string, data []byte) error {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("-o %q: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("-o %q: %w", file, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("-o %q: %w", file, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("-o %q: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("-o %q: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("-o %q: %w", file, err)
	}
	return nil
}
