// rpc-peer: a real Go net/rpc + hashicorp/net-rpc-msgpackrpc peer for the
// MsgpackRPC interop tests, built from Debian's packaged sources (GOPATH mode).
//
//	rpc-peer server                  serve the demo services on 127.0.0.1:0, one
//	                                 msgpack codec per TCP connection; prints
//	                                 "listening on 127.0.0.1:PORT"
//	rpc-peer client -addr H:P [-streams N] [-bench CALLS]
//	                                 call a server's demo services, check every
//	                                 answer; exit 1 on any mismatch; with -bench,
//	                                 also time sequential 64-byte Echo calls
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/rpc"
	"os"
	"sync"
	"time"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
)

// The demo services, as the Swift DemoServices registers them.

type Empty struct{}

type EchoArgs struct{ Msg []byte }
type EchoReply struct{ Msg []byte }
type AddArgs struct{ A, B int64 }
type AddReply struct{ Sum int64 }
type FailArgs struct{ Message string }
type SleepArgs struct{ Ms int64 }

type Status struct{}

func (*Status) Ping(args Empty, reply *Empty) error { return nil }

type Echo struct{}

func (*Echo) Echo(args EchoArgs, reply *EchoReply) error {
	reply.Msg = args.Msg
	return nil
}

type Arith struct{}

func (*Arith) Add(args AddArgs, reply *AddReply) error {
	reply.Sum = args.A + args.B
	return nil
}

type Test struct{}

func (*Test) Fail(args FailArgs, reply *Empty) error { return errors.New(args.Message) }

func (*Test) Sleep(args SleepArgs, reply *Empty) error {
	time.Sleep(time.Duration(args.Ms) * time.Millisecond)
	return nil
}

func serve() {
	server := rpc.NewServer()
	for _, service := range []interface{}{&Status{}, &Echo{}, &Arith{}, &Test{}} {
		if err := server.Register(service); err != nil {
			fmt.Fprintln(os.Stderr, "register:", err)
			os.Exit(2)
		}
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
		go server.ServeCodec(msgpackrpc.NewServerCodec(conn))
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

var payloadSizes = []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 1 << 20}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// callAll runs every demo call over one connection with CallWithCodec, the
// way Consul's pool does (one call in flight per stream).
func callAll(c *checker, addr string, full bool) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		c.check(false, "dial %s: %v", addr, err)
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
// reading replies on one connection: the server must answer them in order.
func pipelined(c *checker, addr string) {
	client, err := msgpackrpc.Dial("tcp", addr)
	if err != nil {
		c.check(false, "dial %s: %v", addr, err)
		return
	}
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
func benchmark(c *checker, addr string, calls int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		c.check(false, "dial %s: %v", addr, err)
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

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rpc-peer server | client -addr H:P [-streams N]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		serve()
	case "client":
		flags := flag.NewFlagSet("client", flag.ExitOnError)
		addr := flags.String("addr", "", "server address")
		streams := flags.Int("streams", 8, "concurrent connections")
		bench := flags.Int("bench", 0, "then time this many sequential 64-byte Echo calls on one connection")
		flags.Parse(os.Args[2:])
		c := &checker{}
		callAll(c, *addr, true)
		pipelined(c, *addr)
		var wg sync.WaitGroup
		for i := 0; i < *streams; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				callAll(c, *addr, false)
			}()
		}
		wg.Wait()
		if *bench > 0 {
			benchmark(c, *addr, *bench)
		}
		fmt.Printf("checks=%d failures=%d\n", c.checks, c.failures)
		if c.failures > 0 {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
