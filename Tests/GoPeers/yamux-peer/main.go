// yamux-peer: a real hashicorp/yamux peer for MuxRPC's interop tests.
//
// Server mode (-mode server): listens on 127.0.0.1:0, prints "listening on 127.0.0.1:PORT",
// serves yamux sessions; every accepted stream starts with one command line:
//
//	echo             echo every byte until EOF, then close (FIN)
//	echon N          echo exactly N bytes, then close (for Go clients, see below)
//	sinkn N          read exactly N bytes, answer "count N\n", close
//	sink             read until EOF, answer "count N\n", close
//	send N SEED      write N pattern bytes (byte i = (i+SEED)%251), close
//	halfclose        read until EOF, then answer "after-eof N\n" (writing after the peer's FIN), close
//	goaway           call session.GoAway(), answer "ok\n", close
//	ping             session.Ping(), answer "rtt ok\n" (or "rtt error ...")
//	streams          answer "streams N\n" (session.NumStreams() minus this one)
//	closesession     close the whole session at once
//
// Client mode (-mode client -addr HOST:PORT -scenario NAME): dials a Swift server that speaks
// the same command protocol and runs one scenario; prints "ok" and exits 0, or prints
// "FAIL: reason" and exits 1.
//
// Debian's hashicorp/yamux returns EOF from Read as soon as the stream's own write side is
// closed and its buffer is empty, so a Go client here never closes before it has read the
// whole answer: it uses the counted commands (echon, sinkn) instead of half-closing.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

var (
	mode        = flag.String("mode", "server", "server or client")
	addr        = flag.String("addr", "", "client: address of the Swift server")
	scenario    = flag.String("scenario", "echo", "client scenario")
	streams     = flag.Int("streams", 64, "client: concurrent streams")
	size        = flag.Int("bytes", 1<<20, "client: bytes per stream")
	keepaliveMs = flag.Int("keepalive-ms", 0, "keepalive interval in ms (0: keepalive off)")
	writeTOms   = flag.Int("write-timeout-ms", 10000, "connection write timeout in ms")
	window      = flag.Int("window", 256*1024, "max stream window")
	waitMs      = flag.Int("wait-ms", 500, "client keepalive scenario: how long to stay idle")
)

func config() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = *keepaliveMs > 0
	if *keepaliveMs > 0 {
		c.KeepAliveInterval = time.Duration(*keepaliveMs) * time.Millisecond
	}
	c.ConnectionWriteTimeout = time.Duration(*writeTOms) * time.Millisecond
	c.MaxStreamWindowSize = uint32(*window)
	c.LogOutput = os.Stderr
	return c
}

func pattern(n int, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i + seed) % 251)
	}
	return b
}

func checkPattern(b []byte, seed int) error {
	for i, v := range b {
		if v != byte((i+seed)%251) {
			return fmt.Errorf("pattern mismatch at byte %d: got %d want %d", i, v, byte((i+seed)%251))
		}
	}
	return nil
}

func main() {
	flag.Parse()
	switch *mode {
	case "server":
		runServer()
	case "client":
		if err := runClient(); err != nil {
			fmt.Printf("FAIL: %v\n", err)
			os.Exit(1)
		}
		fmt.Println("ok")
	default:
		fmt.Fprintln(os.Stderr, "unknown mode")
		os.Exit(2)
	}
}

// ---------------------------------------------------------------- server

func runServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr().String())
	os.Stdout.Sync()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go serveConn(conn)
	}
}

func serveConn(conn net.Conn) {
	session, err := yamux.Server(conn, config())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for {
		stream, err := session.AcceptStream()
		if err != nil {
			return
		}
		go serveStream(session, stream)
	}
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	return strings.TrimSpace(line), err
}

func serveStream(session *yamux.Session, stream *yamux.Stream) {
	defer stream.Close()
	r := bufio.NewReader(stream)
	line, err := readLine(r)
	if err != nil {
		return
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return
	}
	switch fields[0] {
	case "echo":
		io.Copy(stream, r)
	case "echon":
		n, _ := strconv.ParseInt(fields[1], 10, 64)
		io.CopyN(stream, r, n)
	case "sinkn":
		want, _ := strconv.ParseInt(fields[1], 10, 64)
		n, _ := io.CopyN(ioutil.Discard, r, want)
		fmt.Fprintf(stream, "count %d\n", n)
	case "sink":
		n, _ := io.Copy(ioutil.Discard, r)
		fmt.Fprintf(stream, "count %d\n", n)
	case "send":
		n, _ := strconv.Atoi(fields[1])
		seed, _ := strconv.Atoi(fields[2])
		stream.Write(pattern(n, seed))
	case "halfclose":
		n, _ := io.Copy(ioutil.Discard, r)
		fmt.Fprintf(stream, "after-eof %d\n", n)
	case "goaway":
		session.GoAway()
		fmt.Fprintf(stream, "ok\n")
	case "ping":
		if _, err := session.Ping(); err != nil {
			fmt.Fprintf(stream, "rtt error %v\n", err)
		} else {
			fmt.Fprintf(stream, "rtt ok\n")
		}
	case "streams":
		fmt.Fprintf(stream, "streams %d\n", session.NumStreams()-1)
	case "closesession":
		session.Close()
	}
}

// ---------------------------------------------------------------- client

func runClient() error {
	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		return err
	}
	session, err := yamux.Client(conn, config())
	if err != nil {
		return err
	}
	defer session.Close()
	switch *scenario {
	case "echo":
		return parallel(*streams, func(i int) error { return echo(session, *size, i) })
	case "recv":
		return parallel(*streams, func(i int) error { return recv(session, *size, i) })
	case "sink":
		return parallel(*streams, func(i int) error { return sink(session, *size, i) })
	case "halfclose":
		return halfClose(session)
	case "ping":
		for i := 0; i < 10; i++ {
			if _, err := session.Ping(); err != nil {
				return err
			}
		}
		return nil
	case "keepalive":
		// Keepalive pings go out every keepalive-ms; the Swift server must answer them or
		// this session closes. Stay idle, then prove the session still works.
		time.Sleep(time.Duration(*waitMs) * time.Millisecond)
		if session.IsClosed() {
			return errors.New("session closed during idle keepalive period")
		}
		return echo(session, 1024, 7)
	case "goaway":
		s, err := session.OpenStream()
		if err != nil {
			return err
		}
		defer s.Close()
		fmt.Fprintf(s, "goaway\n")
		line, err := readLine(bufio.NewReader(s))
		if err != nil || line != "ok" {
			return fmt.Errorf("goaway: got %q %v", line, err)
		}
		if _, err := session.OpenStream(); err != yamux.ErrRemoteGoAway {
			return fmt.Errorf("open after GoAway: want ErrRemoteGoAway, got %v", err)
		}
		return nil
	default:
		return fmt.Errorf("unknown scenario %q", *scenario)
	}
}

func parallel(n int, f func(int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := f(i); err != nil {
				errs <- fmt.Errorf("stream %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}

func echo(session *yamux.Session, n int, seed int) error {
	s, err := session.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	werr := make(chan error, 1)
	go func() {
		if _, err := fmt.Fprintf(s, "echon %d\n", n); err != nil {
			werr <- err
			return
		}
		_, err := s.Write(pattern(n, seed))
		werr <- err
	}()
	got, err := ioutil.ReadAll(s) // the server closes after echoing n bytes
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if len(got) != n {
		return fmt.Errorf("echo: got %d bytes, want %d", len(got), n)
	}
	return checkPattern(got, seed)
}

func recv(session *yamux.Session, n int, seed int) error {
	s, err := session.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(s, "send %d %d\n", n, seed)
	got, err := ioutil.ReadAll(s)
	if err != nil {
		return err
	}
	if len(got) != n {
		return fmt.Errorf("recv: got %d bytes, want %d", len(got), n)
	}
	return checkPattern(got, seed)
}

func sink(session *yamux.Session, n int, seed int) error {
	s, err := session.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(s, "sinkn %d\n", n)
	if _, err := s.Write(pattern(n, seed)); err != nil {
		return err
	}
	line, err := readLine(bufio.NewReader(s))
	if err != nil && err != io.EOF {
		return err
	}
	if line != fmt.Sprintf("count %d", n) {
		return fmt.Errorf("sink: got %q", line)
	}
	return nil
}

// halfClose: the Swift server half-closes first ("bye" then FIN); we read to EOF, then keep
// writing on the stream, which must still reach the server, then close.
func halfClose(session *yamux.Session) error {
	s, err := session.OpenStream()
	if err != nil {
		return err
	}
	fmt.Fprintf(s, "finfirst\n")
	got, err := ioutil.ReadAll(s)
	if err != nil {
		return err
	}
	if string(got) != "bye\n" {
		return fmt.Errorf("halfclose: got %q", got)
	}
	if _, err := s.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
		return fmt.Errorf("write after the server's FIN: %v", err)
	}
	return s.Close()
}
