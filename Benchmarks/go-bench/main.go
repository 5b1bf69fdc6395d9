// go-bench: HashiCorp's Go stack measured the way muxrpc-bench measures
// MuxRPC, in-process over loopback TCP, with the same shapes and the same
// one-line key=value output, so the side-by-side script can run both.
//
//	go-bench streams --streams S --bytes N --chunk C   hashicorp/yamux bulk transfer
//	go-bench rpc --calls N --concurrency C --payload P net/rpc + msgpackrpc over yamux, Echo.Echo
//	go-bench tcp --bytes N --chunk C                   raw loopback TCP
//	go-bench pingpong --round-trips N --payload P      raw loopback TCP round trips, one in flight
//	go-bench rpc-server [--listen HOST:PORT]           serves Echo.Echo to other processes (Consul mode)
//	go-bench rpc --addr HOST:PORT ...                  calls a server in another process (Consul mode)
//	go-bench streaming-call --values N                 one Nomad streaming call reading N frames of Stream.Count
//
// Across processes both sides speak Consul's mode (0x04, then yamux), so a
// Go client can call muxrpc-server and muxrpc-bench can call a Go server.
//
// Built in GOPATH mode against Debian's packaged sources:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o go-bench .
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/net-rpc-msgpackrpc"
	"github.com/hashicorp/yamux"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go-bench streams|rpc|tcp [flags]")
		os.Exit(2)
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	streams := flags.Int("streams", 1, "concurrent streams")
	bytes := flags.Int64("bytes", 256<<20, "bytes in total, split over the streams")
	chunk := flags.Int("chunk", 64<<10, "bytes per write")
	calls := flags.Int("calls", 20000, "calls in total")
	concurrency := flags.Int("concurrency", 1, "calls in flight")
	payload := flags.Int("payload", 64, "Echo payload bytes (pingpong: bytes each way)")
	addr := flags.String("addr", "", "rpc: call the server at HOST:PORT instead of one in this process")
	listen := flags.String("listen", "127.0.0.1:0", "rpc-server: where to listen")
	roundTrips := flags.Int("round-trips", 100000, "pingpong: round trips in total")
	values := flags.Int64("values", 1000000, "streaming-call: frames the server writes")
	flags.Parse(os.Args[2:])

	switch os.Args[1] {
	case "streams":
		mbps := streamsBench(*streams, *bytes, *chunk)
		fmt.Printf("streams=%d chunk=%d bytes=%d MBps=%.1f\n", *streams, *chunk, *bytes, mbps)
	case "tcp":
		mbps := tcpBench(*bytes, *chunk)
		fmt.Printf("chunk=%d bytes=%d MBps=%.1f\n", *chunk, *bytes, mbps)
	case "pingpong":
		rate := pingPongBench(*roundTrips, *payload)
		fmt.Printf("round_trips=%d payload=%d round_trips_per_s=%.0f mean_us=%.1f\n", *roundTrips, *payload, rate, 1e6/rate)
	case "rpc-server":
		rpcServe(*listen)
	case "rpc":
		rate, p50, p99 := rpcBench(*calls, *concurrency, *payload, *addr)
		fmt.Printf("calls=%d conc=%d payload=%d calls_per_s=%.0f p50_us=%.1f p99_us=%.1f\n", *calls, *concurrency, *payload, rate, p50, p99)
	case "streaming-call":
		rate := streamingCallBench(*values)
		fmt.Printf("values=%d values_per_s=%.1f mean_ns=%.1f\n", *values, rate, 1e9/rate)
	default:
		fmt.Fprintln(os.Stderr, "unknown benchmark", os.Args[1])
		os.Exit(2)
	}
}

// pingPongBench sends `payload` bytes over loopback TCP, waits for the peer
// goroutine to send them back, and only then sends again: the ceiling of
// an RPC with one call in flight, with Go's scheduler and network poller
// as the rpc benchmark has them.
func pingPongBench(roundTrips, payload int) float64 {
	clientConn, serverConn := loopbackPair()
	go func() {
		buffer := make([]byte, payload)
		for {
			if _, err := io.ReadFull(serverConn, buffer); err != nil {
				return
			}
			if _, err := serverConn.Write(buffer); err != nil {
				return
			}
		}
	}()
	buffer := make([]byte, payload)
	start := time.Now()
	for i := 0; i < roundTrips; i++ {
		_, err := clientConn.Write(buffer)
		check(err)
		_, err = io.ReadFull(clientConn, buffer)
		check(err)
	}
	elapsed := time.Since(start)
	clientConn.Close()
	serverConn.Close()
	return float64(roundTrips) / elapsed.Seconds()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-bench:", err)
		os.Exit(1)
	}
}

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair() (client, server net.Conn) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer listener.Close()
	accepted := make(chan net.Conn)
	go func() {
		conn, err := listener.Accept()
		check(err)
		accepted <- conn
	}()
	client, err = net.Dial("tcp", listener.Addr().String())
	check(err)
	return client, <-accepted
}

func yamuxConfig() *yamux.Config {
	config := yamux.DefaultConfig()
	config.LogOutput = io.Discard
	return config
}

// streamsBench sends bytes over `streams` yamux streams at once; the rate is
// counted at the receiver, from the first byte sent to the last byte read.
func streamsBench(streams int, total int64, chunk int) float64 {
	clientConn, serverConn := loopbackPair()
	server, err := yamux.Server(serverConn, yamuxConfig())
	check(err)
	client, err := yamux.Client(clientConn, yamuxConfig())
	check(err)
	perStream := total / int64(streams)

	var received sync.WaitGroup
	received.Add(streams)
	go func() {
		for i := 0; i < streams; i++ {
			stream, err := server.Accept()
			check(err)
			go func() {
				defer received.Done()
				n, err := io.Copy(io.Discard, stream)
				check(err)
				if n != perStream {
					check(fmt.Errorf("stream received %d bytes, want %d", n, perStream))
				}
				stream.Close()
			}()
		}
	}()

	buffer := make([]byte, chunk)
	start := time.Now()
	for i := 0; i < streams; i++ {
		go func() {
			stream, err := client.Open()
			check(err)
			for sent := int64(0); sent < perStream; {
				n := int64(chunk)
				if perStream-sent < n {
					n = perStream - sent
				}
				_, err := stream.Write(buffer[:n])
				check(err)
				sent += n
			}
			check(stream.Close())
		}()
	}
	received.Wait()
	elapsed := time.Since(start)
	client.Close()
	server.Close()
	return float64(perStream*int64(streams)) / elapsed.Seconds() / 1e6
}

func tcpBench(total int64, chunk int) float64 {
	clientConn, serverConn := loopbackPair()
	done := make(chan int64)
	go func() {
		n, err := io.Copy(io.Discard, serverConn)
		check(err)
		done <- n
	}()
	buffer := make([]byte, chunk)
	start := time.Now()
	for sent := int64(0); sent < total; {
		n := int64(chunk)
		if total-sent < n {
			n = total - sent
		}
		_, err := clientConn.Write(buffer[:n])
		check(err)
		sent += n
	}
	check(clientConn.Close())
	n := <-done
	elapsed := time.Since(start)
	if n != total {
		check(fmt.Errorf("received %d bytes, want %d", n, total))
	}
	return float64(total) / elapsed.Seconds() / 1e6
}

// Echo is the demo service's Echo.Echo, as muxrpc-server serves it.
type Echo struct{}

type EchoArgs struct{ Msg []byte }
type EchoReply struct{ Msg []byte }

func (Echo) Echo(args *EchoArgs, reply *EchoReply) error {
	reply.Msg = args.Msg
	return nil
}

// rpcBench runs Echo.Echo the way Consul does RPC: a net/rpc server serving
// each yamux stream with a msgpack codec, and clients that each own a stream
// and call with msgpackrpc.CallWithCodec, one call in flight per stream.
// serveSession answers net/rpc calls on every stream of session.
func serveSession(rpcServer *rpc.Server, session *yamux.Session) {
	for {
		stream, err := session.Accept()
		if err != nil {
			return
		}
		go func() {
			codec := msgpackrpc.NewCodec(true, true, stream)
			for rpcServer.ServeRequest(codec) == nil {
			}
		}()
	}
}

// consulModeByte starts every connection across processes, as Consul's RPC port expects.
const consulModeByte = 0x04

// rpcServe serves Echo.Echo in Consul's mode until killed, printing its address first.
func rpcServe(listen string) {
	rpcServer := rpc.NewServer()
	check(rpcServer.Register(Echo{}))
	listener, err := net.Listen("tcp", listen)
	check(err)
	fmt.Printf("listening on %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		check(err)
		go func() {
			var mode [1]byte
			if _, err := io.ReadFull(conn, mode[:]); err != nil || mode[0] != consulModeByte {
				conn.Close()
				return
			}
			session, err := yamux.Server(conn, yamuxConfig())
			if err != nil {
				conn.Close()
				return
			}
			serveSession(rpcServer, session)
		}()
	}
}

func rpcBench(calls, concurrency, payloadSize int, addr string) (rate, p50, p99 float64) {
	var server *yamux.Session
	var clientConn net.Conn
	if addr == "" {
		rpcServer := rpc.NewServer()
		check(rpcServer.Register(Echo{}))
		var serverConn net.Conn
		clientConn, serverConn = loopbackPair()
		var err error
		server, err = yamux.Server(serverConn, yamuxConfig())
		check(err)
		go serveSession(rpcServer, server)
	} else {
		var err error
		clientConn, err = net.Dial("tcp", addr)
		check(err)
		_, err = clientConn.Write([]byte{consulModeByte})
		check(err)
	}
	client, err := yamux.Client(clientConn, yamuxConfig())
	check(err)

	payload := make([]byte, payloadSize)
	for i := range payload {
		payload[i] = byte(i)
	}
	latencies := make([]time.Duration, calls)
	var workers sync.WaitGroup
	var next int64
	var mutex sync.Mutex
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			stream, err := client.Open()
			check(err)
			codec := msgpackrpc.NewCodec(true, true, stream)
			for {
				mutex.Lock()
				index := next
				next++
				mutex.Unlock()
				if index >= int64(calls) {
					return
				}
				began := time.Now()
				var reply EchoReply
				check(msgpackrpc.CallWithCodec(codec, "Echo.Echo", &EchoArgs{Msg: payload}, &reply))
				latencies[index] = time.Since(began)
				if len(reply.Msg) != payloadSize {
					check(fmt.Errorf("echo returned %d bytes, want %d", len(reply.Msg), payloadSize))
				}
			}
		}()
	}
	workers.Wait()
	elapsed := time.Since(start)
	client.Close()
	if server != nil {
		server.Close()
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	micros := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return float64(calls) / elapsed.Seconds(), micros(latencies[calls/2]), micros(latencies[calls*99/100])
}
