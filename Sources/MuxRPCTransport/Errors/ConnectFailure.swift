import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MuxRPCError {
    /// What a failed TCP connect to `address` means, in the words a user
    /// knows from other tools ("connection refused: 10.0.0.5:8300"), with
    /// NIO's error kept as the cause.
    ///
    /// NIO reports a refused connect as an `IOError` whose text says
    /// "connection reset (error set)", whatever the errno: the errno is what
    /// tells refused from unreachable, so it decides the code here.
    static func connectFailure(_ error: any Error, to address: SocketAddress, timeout: Duration) -> MuxRPCError {
        func failure(_ code: Code, _ message: String) -> MuxRPCError {
            MuxRPCError(code: code, message: message, address: address, cause: error)
        }
        if case ChannelError.connectTimeout = error {
            return failure(.connectTimeout, "connect timed out after \(timeout)")
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return failure(.connectionRefused, "connection refused")
            case EHOSTUNREACH: return failure(.unreachable, "host unreachable")
            case ENETUNREACH: return failure(.unreachable, "network unreachable")
            // The kernel gave up on its SYNs before our own timeout did.
            case ETIMEDOUT: return failure(.connectTimeout, "connect timed out")
            default: break
            }
        }
        return failure(.connectFailed, "connect failed (\(error))")
    }
}
