// rpc-peer: a real Go net/rpc + hashicorp/net-rpc-msgpackrpc peer for the
// MsgpackRPC and MuxRPC interop tests, built from Debian's packaged sources
// (GOPATH mode).
//
//	rpc-peer server [-preamble] [-tls-cert F -tls-key F] [-lie]
//	        serve the demo services on 127.0.0.1:0; prints
//	        "listening on 127.0.0.1:PORT". Without -preamble: one msgpack
//	        codec per raw TCP connection. With -preamble: the connection
//	        protocol of Consul's and Nomad's RPC ports on one listener
//	        (0x00 plain net/rpc, 0x04 yamux with every stream RPC, 0x06 yamux
//	        with a 0x01 at the start of each RPC stream, 0x03 TLS and then the
//	        real byte inside it, with -tls-cert/-tls-key); prints
//	        "conn mode=MODE tls=BOOL" as each connection's mode is known.
//	        -lie makes Echo.Echo add a byte and Arith.Add answer one too many
//	        (for tests of clients that must notice wrong answers).
//	        A stream of a yamux session that the client resets (RST) prints
//	        "stream reset"; Test.WaitResets{After} answers {Count} once more
//	        than After streams were reset (a FIN is not a reset).
//	        Test.Sleep prints "sleep started ms=N" as it begins.
//	rpc-peer client -addr H:P [-mode raw|plain|consul|nomad] [-tls-ca F
//	        -server-name N] [-streams N] [-bench CALLS]
//	        call a server's demo services, check every answer; exit 1 on any
//	        mismatch; -streams runs that many streams at once (one yamux
//	        session in the multiplexed modes, a connection each in plain and
//	        raw mode); with -bench, also time sequential 64-byte Echo calls
//	rpc-peer churn -addr H:P -mode consul|nomad -calls N [-workers W] [-mixed]
//	        as a Go client of Consul's pool does when it does not reuse
//	        streams: one yamux session, and for each call a new stream that
//	        is closed (FIN) once the call is answered. With -mixed, workers
//	        also close streams before their first byte, after several calls,
//	        and in the middle of a request. Prints "churn calls=N fails=F
//	        first_fail=I go_streams=S" once every stream has ended on the Go
//	        side too (S is the session's stream count then: 1, the one
//	        stream held open), and then waits for SIGTERM with the session
//	        still open, so the test can look at the server meanwhile.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"math"
	"net"
	"net/rpc"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
	"github.com/hashicorp/yamux"
)

// The demo services, as the Swift DemoServices registers them.

type Empty struct{}

type EchoArgs struct{ Msg []byte }
type EchoReply struct{ Msg []byte }
type AddArgs struct{ A, B int64 }
type AddReply struct{ Sum int64 }
type FailArgs struct{ Message string }
type SleepArgs struct{ Ms int64 }

// lie makes the server answer Echo.Echo and Arith.Add wrongly (-lie).
var lie bool

type Status struct{}

func (*Status) Ping(args Empty, reply *Empty) error { return nil }

type Echo struct{}

func (*Echo) Echo(args EchoArgs, reply *EchoReply) error {
	reply.Msg = args.Msg
	if lie {
		reply.Msg = append(append([]byte{}, args.Msg...), 0x2a)
	}
	return nil
}

type Arith struct{}

func (*Arith) Add(args AddArgs, reply *AddReply) error {
	reply.Sum = args.A + args.B
	if lie {
		reply.Sum++
	}
	return nil
}

type Test struct{}

func (*Test) Fail(args FailArgs, reply *Empty) error { return errors.New(args.Message) }

func (*Test) Sleep(args SleepArgs, reply *Empty) error {
	// For tests that must know the request arrived before they cancel it.
	fmt.Printf("sleep started ms=%d\n", args.Ms)
	time.Sleep(time.Duration(args.Ms) * time.Millisecond)
	return nil
}

// Streams of the server's yamux sessions that the client reset (RST), as
// the Swift pool does to a stream whose call was cancelled: the stream's
// reader saw yamux.ErrConnectionReset. A FIN (EOF) is not counted.
var streamResets = struct {
	sync.Mutex
	cond  *sync.Cond
	count int64
}{}

func init() { streamResets.cond = sync.NewCond(&streamResets.Mutex) }

// resetWatch counts, once, a reset that ends reads of its stream.
type resetWatch struct {
	net.Conn
	counted bool
}

func (w *resetWatch) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err == yamux.ErrConnectionReset && !w.counted {
		w.counted = true
		streamResets.Lock()
		streamResets.count++
		streamResets.cond.Broadcast()
		streamResets.Unlock()
		fmt.Println("stream reset")
	}
	return n, err
}

type ResetsArgs struct{ After int64 }
type ResetsReply struct{ Count int64 }

// WaitResets answers once more than args.After streams have been reset
// (or after 60 s, with the count then): the test waits on the event, not
// on time.
func (*Test) WaitResets(args ResetsArgs, reply *ResetsReply) error {
	limit := time.AfterFunc(60*time.Second, func() {
		streamResets.Lock()
		streamResets.cond.Broadcast()
		streamResets.Unlock()
	})
	defer limit.Stop()
	end := time.Now().Add(60 * time.Second)
	streamResets.Lock()
	defer streamResets.Unlock()
	for streamResets.count <= args.After && time.Now().Before(end) {
		streamResets.cond.Wait()
	}
	reply.Count = streamResets.count
	return nil
}

func newRPCServer() *rpc.Server {
	server := rpc.NewServer()
	for _, service := range []interface{}{&Status{}, &Echo{}, &Arith{}, &Test{}} {
		if err := server.Register(service); err != nil {
			fmt.Fprintln(os.Stderr, "register:", err)
			os.Exit(2)
		}
	}
	return server
}

func serve(args []string) {
	flags := flag.NewFlagSet("server", flag.ExitOnError)
	preamble := flags.Bool("preamble", false, "speak Consul's and Nomad's connection preambles")
	certFile := flags.String("tls-cert", "", "with -preamble: PEM certificate, offer TLS (0x03)")
	keyFile := flags.String("tls-key", "", "PEM private key for -tls-cert")
	flags.BoolVar(&lie, "lie", false, "answer Echo.Echo and Arith.Add wrongly")
	flags.Parse(args)

	p := &preambleServer{rpc: newRPCServer()}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tls:", err)
			os.Exit(2)
		}
		p.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			os.Exit(2)
		}
		if *preamble {
			go p.handle(conn, false)
		} else {
			go p.rpc.ServeCodec(msgpackrpc.NewServerCodec(conn))
		}
	}
}

// The first bytes of Consul's and Nomad's RPC connections, and of each
// stream of a Nomad session.
const (
	preamblePlain  = 0x00
	preambleTLS    = 0x03
	preambleConsul = 0x04
	preambleNomad  = 0x06
	nomadStreamRPC = 0x01
)

// preambleServer serves connections as Consul's and Nomad's RPC ports do:
// the first byte says what follows.
type preambleServer struct {
	rpc *rpc.Server
	tls *tls.Config
}

// How long a client has to send its preamble (and finish a TLS handshake),
// generous so that a busy test machine does not lose connections.
const handshakeTimeout = 60 * time.Second

func (p *preambleServer) handle(conn net.Conn, insideTLS bool) {
	conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		fmt.Fprintln(os.Stderr, "reading preamble:", err)
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	switch first[0] {
	case preambleTLS:
		if insideTLS || p.tls == nil {
			fmt.Fprintf(os.Stderr, "refused 0x03: TLS offered=%v, already inside TLS=%v\n", p.tls != nil, insideTLS)
			conn.Close()
			return
		}
		tlsConn := tls.Server(conn, p.tls)
		tlsConn.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tlsConn.Handshake(); err != nil {
			fmt.Fprintln(os.Stderr, "TLS handshake:", err)
			conn.Close()
			return
		}
		tlsConn.SetDeadline(time.Time{})
		p.handle(tlsConn, true)
	case preamblePlain:
		fmt.Printf("conn mode=plain tls=%v\n", insideTLS)
		p.rpc.ServeCodec(msgpackrpc.NewServerCodec(conn))
	case preambleConsul:
		fmt.Printf("conn mode=consul tls=%v\n", insideTLS)
		p.serveSession(conn, false)
	case preambleNomad:
		fmt.Printf("conn mode=nomad tls=%v\n", insideTLS)
		p.serveSession(conn, true)
	default:
		fmt.Fprintf(os.Stderr, "refused unknown preamble 0x%02x\n", first[0])
		conn.Close()
	}
}

// serveSession runs a yamux server session on conn and serves net/rpc on
// every stream the client opens; in Nomad's mode each stream first says
// what it is (0x01 for RPC).
func (p *preambleServer) serveSession(conn net.Conn, nomad bool) {
	config := yamux.DefaultConfig()
	config.LogOutput = os.Stderr
	session, err := yamux.Server(conn, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "yamux server:", err)
		conn.Close()
		return
	}
	for {
		stream, err := session.Accept()
		if err != nil {
			return
		}
		go func(stream net.Conn) {
			if nomad {
				var kind [1]byte
				if _, err := io.ReadFull(stream, kind[:]); err != nil || kind[0] != nomadStreamRPC {
					fmt.Fprintf(os.Stderr, "refused Nomad stream type %v (err %v)\n", kind[0], err)
					stream.Close()
					return
				}
			}
			p.rpc.ServeCodec(msgpackrpc.NewServerCodec(&resetWatch{Conn: stream}))
		}(stream)
	}
}

// opener opens one RPC stream to the server: a yamux stream of one session
// in the multiplexed modes, its own TCP connection in plain and raw mode.
type opener func() (io.ReadWriteCloser, error)

// dialPreamble connects to addr as a Consul or Nomad client does: with
// TLS, 0x03 in plaintext, the handshake, then the mode's byte inside TLS.
func dialPreamble(addr string, mode byte, tlsConfig *tls.Config) (net.Conn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		if _, err := conn.Write([]byte{preambleTLS}); err != nil {
			conn.Close()
			return nil, err
		}
		tlsConn := tls.Client(conn, tlsConfig)
		if err := tlsConn.Handshake(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake: %v", err)
		}
		conn = tlsConn
	}
	if _, err := conn.Write([]byte{mode}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func makeOpener(mode, addr string, tlsConfig *tls.Config) (opener, error) {
	switch mode {
	case "raw":
		if tlsConfig != nil {
			return nil, errors.New("raw mode has no TLS")
		}
		return func() (io.ReadWriteCloser, error) { return net.Dial("tcp", addr) }, nil
	case "plain":
		return func() (io.ReadWriteCloser, error) { return dialPreamble(addr, preamblePlain, tlsConfig) }, nil
	case "consul", "nomad":
		first := byte(preambleConsul)
		if mode == "nomad" {
			first = preambleNomad
		}
		conn, err := dialPreamble(addr, first, tlsConfig)
		if err != nil {
			return nil, err
		}
		config := yamux.DefaultConfig()
		config.LogOutput = os.Stderr
		session, err := yamux.Client(conn, config)
		if err != nil {
			return nil, err
		}
		return func() (io.ReadWriteCloser, error) {
			stream, err := session.Open()
			if err != nil {
				return nil, err
			}
			if mode == "nomad" {
				if _, err := stream.Write([]byte{nomadStreamRPC}); err != nil {
					stream.Close()
					return nil, err
				}
			}
			return stream, nil
		}, nil
	default:
		return nil, fmt.Errorf("unknown mode %q (raw, plain, consul or nomad)", mode)
	}
}

// checker counts checks and failures across goroutines.
type checker struct {
	mu       sync.Mutex
	checks   int
	failures int
}

func (c *checker) check(ok bool, format string, args ...interface{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks++
	if !ok {
		c.failures++
		fmt.Fprintf(os.Stderr, "MISMATCH: "+format+"\n", args...)
	}
}

var payloadSizes = []int{0, 1, 15, 16, 31, 32, 33, 255, 256, 257, 65535, 65536, 65537, 1 << 20}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// callAll runs every demo call over one connection with CallWithCodec, the
// way Consul's pool does (one call in flight per stream).
func callAll(c *checker, open opener, full bool) {
	conn, err := open()
	if err != nil {
		c.check(false, "open stream: %v", err)
		return
	}
	codec := msgpackrpc.NewClientCodec(conn)
	defer codec.Close()

	var empty Empty
	err = msgpackrpc.CallWithCodec(codec, "Status.Ping", Empty{}, &empty)
	c.check(err == nil, "Status.Ping: %v", err)
	// A nil argument travels as msgpack nil (0xc0); net/rpc servers take it as empty.
	err = msgpackrpc.CallWithCodec(codec, "Status.Ping", nil, &empty)
	c.check(err == nil, "Status.Ping with nil args: %v", err)

	sizes := []int{0, 1, 64}
	if full {
		sizes = payloadSizes
	}
	for _, n := range sizes {
		msg := pattern(n)
		var reply EchoReply
		err = msgpackrpc.CallWithCodec(codec, "Echo.Echo", EchoArgs{Msg: msg}, &reply)
		c.check(err == nil && bytes.Equal(reply.Msg, msg), "Echo.Echo %d bytes: err=%v got %d bytes", n, err, len(reply.Msg))
	}

	adds := [][3]int64{
		{1, 2, 3}, {-5, 3, -2}, {math.MaxInt64, 0, math.MaxInt64}, {math.MinInt64, 0, math.MinInt64},
		{math.MaxInt64 - 1, 1, math.MaxInt64}, {math.MinInt64 + 1, -1, math.MinInt64}, {-1, 1, 0},
		{127, 1, 128}, {255, 1, 256}, {-32, -1, -33}, {65535, 1, 65536}, {4294967295, 1, 4294967296},
	}
	for _, a := range adds {
		var reply AddReply
		err = msgpackrpc.CallWithCodec(codec, "Arith.Add", AddArgs{A: a[0], B: a[1]}, &reply)
		c.check(err == nil && reply.Sum == a[2], "Arith.Add %d+%d: err=%v sum=%d", a[0], a[1], err, reply.Sum)
	}

	err = msgpackrpc.CallWithCodec(codec, "Test.Fail", FailArgs{Message: "boom from Go"}, &empty)
	c.check(err != nil && err.Error() == "boom from Go", "Test.Fail: %v", err)
	_, isServerError := err.(rpc.ServerError)
	c.check(isServerError, "Test.Fail error type: %T", err)

	err = msgpackrpc.CallWithCodec(codec, "Nope.Ping", Empty{}, &empty)
	c.check(err != nil && err.Error() == "rpc: can't find service Nope.Ping", "unknown service: %v", err)
	err = msgpackrpc.CallWithCodec(codec, "Arith.Nope", Empty{}, &empty)
	c.check(err != nil && err.Error() == "rpc: can't find method Arith.Nope", "unknown method: %v", err)

	err = msgpackrpc.CallWithCodec(codec, "Test.Sleep", SleepArgs{Ms: 5}, &empty)
	c.check(err == nil, "Test.Sleep: %v", err)

	// The stream stays usable after error replies.
	var reply AddReply
	err = msgpackrpc.CallWithCodec(codec, "Arith.Add", AddArgs{A: 40, B: 2}, &reply)
	c.check(err == nil && reply.Sum == 42, "Arith.Add after errors: err=%v sum=%d", err, reply.Sum)
}

// pipelined uses Go's rpc.Client, which writes several requests before
// reading replies on one stream: the server must answer them in order.
func pipelined(c *checker, open opener) {
	conn, err := open()
	if err != nil {
		c.check(false, "open stream: %v", err)
		return
	}
	client := msgpackrpc.NewClient(conn)
	defer client.Close()
	calls := make([]*rpc.Call, 0, 32)
	for i := 0; i < 32; i++ {
		calls = append(calls, client.Go("Arith.Add", AddArgs{A: int64(i), B: 1000}, &AddReply{}, nil))
	}
	for i, call := range calls {
		<-call.Done
		reply := call.Reply.(*AddReply)
		c.check(call.Error == nil && reply.Sum == int64(i)+1000, "pipelined Arith.Add %d: err=%v sum=%d", i, call.Error, reply.Sum)
	}
}

// benchmark times sequential 64-byte Echo calls, one in flight, as Consul's
// pool makes them (for a look at the rate, not a check).
func benchmark(c *checker, open opener, calls int) {
	conn, err := open()
	if err != nil {
		c.check(false, "open stream: %v", err)
		return
	}
	codec := msgpackrpc.NewClientCodec(conn)
	defer codec.Close()
	msg := pattern(64)
	start := time.Now()
	for i := 0; i < calls; i++ {
		var reply EchoReply
		if err := msgpackrpc.CallWithCodec(codec, "Echo.Echo", EchoArgs{Msg: msg}, &reply); err != nil {
			c.check(false, "bench Echo.Echo: %v", err)
			return
		}
	}
	elapsed := time.Since(start)
	fmt.Printf("bench calls=%d calls_per_s=%.0f\n", calls, float64(calls)/elapsed.Seconds())
}

func client(args []string) {
	flags := flag.NewFlagSet("client", flag.ExitOnError)
	addr := flags.String("addr", "", "server address")
	mode := flags.String("mode", "raw", "raw (no preamble), plain (0x00), consul (0x04) or nomad (0x06)")
	caFile := flags.String("tls-ca", "", "PEM certificate authority: connect with TLS (0x03 first)")
	serverName := flags.String("server-name", "", "with -tls-ca: the name the server's certificate must carry")
	streams := flags.Int("streams", 8, "concurrent streams")
	bench := flags.Int("bench", 0, "then time this many sequential 64-byte Echo calls on one stream")
	flags.Parse(args)

	var tlsConfig *tls.Config
	if *caFile != "" {
		pem, err := ioutil.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tls-ca:", err)
			os.Exit(2)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "tls-ca: no certificate in", *caFile)
			os.Exit(2)
		}
		tlsConfig = &tls.Config{RootCAs: roots, ServerName: *serverName}
	}
	open, err := makeOpener(*mode, *addr, tlsConfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "MISMATCH: connecting to %s in %s mode: %v\n", *addr, *mode, err)
		os.Exit(1)
	}

	c := &checker{}
	callAll(c, open, true)
	pipelined(c, open)
	var wg sync.WaitGroup
	for i := 0; i < *streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			callAll(c, open, false)
		}()
	}
	wg.Wait()
	if *bench > 0 {
		benchmark(c, open, *bench)
	}
	fmt.Printf("checks=%d failures=%d\n", c.checks, c.failures)
	if c.failures > 0 {
		os.Exit(1)
	}
}

// churn makes calls on a stream each, closing every stream after its call.
func churn(args []string) {
	flags := flag.NewFlagSet("churn", flag.ExitOnError)
	addr := flags.String("addr", "", "server address")
	mode := flags.String("mode", "consul", "consul (0x04) or nomad (0x06)")
	calls := flags.Int("calls", 10000, "calls, each on a stream of its own")
	workers := flags.Int("workers", 4, "goroutines making calls at once")
	mixed := flags.Bool("mixed", false, "also close streams unused, after several calls, and mid-request")
	flags.Parse(args)

	first := byte(preambleConsul)
	if *mode == "nomad" {
		first = preambleNomad
	}
	conn, err := dialPreamble(*addr, first, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial: %v\n", err)
		os.Exit(1)
	}
	config := yamux.DefaultConfig()
	config.LogOutput = os.Stderr
	session, err := yamux.Client(conn, config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "session: %v\n", err)
		os.Exit(1)
	}
	open := func() (*yamux.Stream, error) {
		stream, err := session.OpenStream()
		if err != nil {
			return nil, err
		}
		if *mode == "nomad" {
			if _, err := stream.Write([]byte{nomadStreamRPC}); err != nil {
				stream.Close()
				return nil, err
			}
		}
		return stream, nil
	}
	// One stream held open throughout: the baseline the server's count
	// comes back to.
	held, err := open()
	if err != nil {
		fmt.Fprintf(os.Stderr, "open held stream: %v\n", err)
		os.Exit(1)
	}

	var next, fails, firstFail int64
	firstFail = -1
	fail := func(i int64, what string, err error) {
		if atomic.AddInt64(&fails, 1) <= 5 {
			fmt.Fprintf(os.Stderr, "call %d: %s: %v\n", i, what, err)
		}
		atomic.CompareAndSwapInt64(&firstFail, -1, i)
	}
	msg := pattern(64)
	call := func(i int64, stream *yamux.Stream, n int) {
		codec := msgpackrpc.NewClientCodec(stream)
		for k := 0; k < n; k++ {
			var reply EchoReply
			if err := msgpackrpc.CallWithCodec(codec, "Echo.Echo", EchoArgs{Msg: msg}, &reply); err != nil {
				fail(i, "Echo.Echo", err)
				break
			}
			if !bytes.Equal(reply.Msg, msg) {
				fail(i, "Echo.Echo", errors.New("wrong answer"))
				break
			}
		}
		codec.Close()
	}
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1) - 1
				if i >= int64(*calls) {
					return
				}
				kind := int64(0)
				if *mixed {
					kind = i % 5
				}
				if kind == 3 {
					// Closed before its first byte (in Nomad mode, before
					// the byte that says what the stream is for).
					stream, err := session.OpenStream()
					if err != nil {
						fail(i, "open", err)
						continue
					}
					stream.Close()
					continue
				}
				stream, err := open()
				if err != nil {
					fail(i, "open", err)
					continue
				}
				switch kind {
				case 0, 1:
					call(i, stream, 1)
				case 2:
					call(i, stream, 3)
				case 4:
					// Half a request header, then FIN.
					stream.Write([]byte{0x82, 0xa3, 'S', 'e', 'q'})
					stream.Close()
				}
			}
		}()
	}
	wg.Wait()
	// Every stream closed here ends once the server's FIN arrives: wait for
	// that (bounded), so the count printed is what stays.
	deadline := time.Now().Add(30 * time.Second)
	for session.NumStreams() > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Catch SIGTERM before saying we are done: the test sends it as soon as
	// it has read the line, and Go's default action would end the process
	// with the signal instead of exit status 0.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("churn calls=%d fails=%d first_fail=%d go_streams=%d\n", *calls, fails, firstFail, session.NumStreams())
	<-signals
	held.Close()
	session.Close()
	if fails > 0 {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rpc-peer server [-preamble] [-tls-cert F -tls-key F] [-lie] | client -addr H:P [-mode M] [-tls-ca F -server-name N] [-streams N]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		serve(os.Args[2:])
	case "client":
		client(os.Args[2:])
	case "churn":
		churn(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
