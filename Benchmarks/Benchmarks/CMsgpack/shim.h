// msgpack-c, the reference implementation the codec tests compare against.
#include <msgpack.h>
