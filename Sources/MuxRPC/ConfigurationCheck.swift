/// The checks of a configuration's `validate()`: each `require` throws the
/// configuration's own error, with its message, when its condition fails.
struct ConfigurationCheck<Failure: Error> {
    let makeError: (String) -> Failure

    func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(Failure) {
        if !condition { throw makeError(message()) }
    }
}
