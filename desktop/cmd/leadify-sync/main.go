// Command leadify-sync is the desktop's sync core without a window: it opens a
// replica (desktop/localstore), keeps it in step with the server in the
// background (desktop/syncclient's Run loop) and performs scripted writes read
// from standard input, one command a line:
//
//	note STORE LEAD TEXT   add a note (AddNote) to LEAD; prints "acked ID TEXT" once committed locally
//	call STORE LEAD        record an unanswered call; prints "acked ID"
//	claim STORE N          claim N leads (online); prints "claimed LEAD…"
//	sync                   push and pull now; prints "synced" or "sync-failed REASON"
//	drain                  sync until the outbox is empty (at most 30 s); prints "drained"
//	status                 prints "status online=… pending=… conflicts=…"
//
// At the end of the input it prints "bye" and exits. The server and the
// session token come from -server and $LEADIFY_TOKEN. For crash tests,
// $LEADIFY_CRASH_AT="POINT:N" sends SIGKILL to the process itself the Nth
// time it passes the named point of the write, push or apply paths.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/desktop/syncclient"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
)

func main() {
	dbPath := flag.String("db", "", "replica SQLite file (required)")
	server := flag.String("server", "http://127.0.0.1:8080", "server address")
	flag.Parse()
	if err := run(*dbPath, *server, os.Getenv("LEADIFY_TOKEN"), os.Getenv("LEADIFY_CRASH_AT")); err != nil {
		fmt.Fprintln(os.Stderr, "leadify-sync:", err)
		os.Exit(1)
	}
}

func run(dbPath, server, token, crashAt string) error {
	if dbPath == "" {
		return errors.New("-db is required")
	}
	hook, err := crashHook(crashAt)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := localstore.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetHook(hook)
	c, err := syncclient.New(syncclient.Config{BaseURL: server, Token: token, DB: db, DeviceName: "leadify-sync",
		Hook: hook, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(loopCtx) })
	defer func() { cancel(); wg.Wait() }()

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if err := command(ctx, c, db, strings.Fields(in.Text())); err != nil {
			fmt.Println("error", err)
		}
	}
	fmt.Println("bye")
	return in.Err()
}

// drainLimit bounds how long "drain" tries.
const drainLimit = 30 * time.Second

// command runs one line of the script.
func command(ctx context.Context, c *syncclient.Client, db *localstore.DB, f []string) error {
	if len(f) == 0 {
		return nil
	}
	ids := func(i int) (uuid.UUID, error) {
		if len(f) <= i {
			return uuid.Nil, fmt.Errorf("%s: missing argument %d", f[0], i)
		}
		return uuid.Parse(f[i])
	}
	switch f[0] {
	case "note", "call":
		store, err := ids(1)
		if err != nil {
			return err
		}
		leadID, err := ids(2)
		if err != nil {
			return err
		}
		var m mutation.Mutation = &mutation.RecordCall{Lead: leadID, EventID: uuid.New(), Outcome: lead.OutcomeNoAnswer}
		text := ""
		if f[0] == "note" {
			text = strings.Join(f[3:], " ")
			m = &mutation.AddNote{Lead: leadID, EventID: uuid.New(), Note: text}
		}
		id, err := c.Do(ctx, store, m)
		if err != nil {
			return err
		}
		fmt.Println(strings.TrimSpace("acked " + strconv.FormatInt(id, 10) + " " + text))
	case "claim":
		store, err := ids(1)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil || len(f) != 3 {
			return errors.New("claim: want STORE N")
		}
		got, err := c.Claim(ctx, store, int32(n))
		if err != nil {
			return err
		}
		fmt.Println(strings.TrimSpace("claimed " + strings.Join(got, " ")))
	case "sync":
		if err := c.Sync(ctx); err != nil {
			fmt.Println("sync-failed", err)
			return nil
		}
		fmt.Println("synced")
	case "drain":
		for deadline := time.Now().Add(drainLimit); ; time.Sleep(50 * time.Millisecond) {
			err := c.Sync(ctx)
			st, serr := db.SyncState(ctx)
			if serr != nil {
				return serr
			}
			if err == nil && st.Pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("drain: %d mutations still pending after %v (last error: %v)", st.Pending, drainLimit, err)
			}
		}
		fmt.Println("drained")
	case "status":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("status online=%t pending=%d conflicts=%d\n", st.Online, st.Pending, st.Conflicts)
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

// crashHook returns a hook that kills the process with SIGKILL the Nth time
// it passes POINT, for spec "POINT:N"; nil for "".
func crashHook(spec string) (func(string), error) {
	if spec == "" {
		return nil, nil
	}
	i := strings.LastIndexByte(spec, ':')
	point, nText := spec[:max(i, 0)], spec[i+1:]
	n, err := strconv.Atoi(nText)
	if i < 1 || err != nil || n < 1 {
		return nil, fmt.Errorf("LEADIFY_CRASH_AT=%q: want POINT:N with N ≥ 1", spec)
	}
	var mu sync.Mutex
	hits := 0
	return func(p string) {
		if p != point {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if hits++; hits == n {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never continue past the crash point
		}
	}, nil
}
