//! Logging shim: defmt on firmware (feature `defmt`), nothing otherwise.
//!
//! A macro's `cfg(feature)` is evaluated in the calling crate, so each crate of the
//! workspace keeps its own copy of this file.
#![allow(unused_macros)]

macro_rules! trace {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::trace!($($arg)*);
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)*);
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
    }};
}

macro_rules! error {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::error!($($arg)*);
    }};
}

/// Panics with a message that names the operation, the offset and the error
/// (invariant I7). With `defmt` the message goes through defmt; else, with
/// `panic-static`, through [`StaticPanic`] (integers in hex, no `core::fmt`
/// number or `Debug` code); else through `core::panic!`.
macro_rules! fatal {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::panic!($fmt $(, $arg)*);
        #[cfg(all(feature = "panic-static", not(feature = "defmt")))]
        {
            #[allow(unused_imports)]
            use $crate::fmt::{PanicArg as _, PanicArgOther as _};
            // The message without the crate's prefix, which `StaticPanic` prints
            // once for all (`$fmt` itself is only read at compile time).
            const LEN: usize = $crate::fmt::unprefixed_len($fmt);
            const MESSAGE: [u8; LEN] = $crate::fmt::unprefixed($fmt);
            // The explicit `&` below makes the `PanicArgOther` case resolve.
            $crate::fmt::static_panic(
                &MESSAGE,
                &[$((&$crate::fmt::PanicArgOf(&$arg)).panic_arg()),*],
            );
        }
        #[cfg(not(any(feature = "defmt", feature = "panic-static")))]
        ::core::panic!($fmt $(, $arg)*);
    }};
}

/// The prefix of every `fatal!` message. [`StaticPanic`] prints it, so that each
/// message is stored without it.
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
pub(crate) const PREFIX: &str = "monitor-events: ";

/// The length of `fmt` without [`PREFIX`], which it must start with (checked
/// at compile time: `fatal!` calls this in a `const`).
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
pub(crate) const fn unprefixed_len(fmt: &str) -> usize {
    let (f, p) = (fmt.as_bytes(), PREFIX.as_bytes());
    assert!(
        f.len() >= p.len(),
        "a fatal! message starts with the prefix"
    );
    let mut i = 0;
    while i < p.len() {
        assert!(f[i] == p[i], "a fatal! message starts with the prefix");
        i += 1;
    }
    f.len() - p.len()
}

/// `fmt` without [`PREFIX`], as bytes (`L` is [`unprefixed_len`] of `fmt`).
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
pub(crate) const fn unprefixed<const L: usize>(fmt: &str) -> [u8; L] {
    let f = fmt.as_bytes();
    let skip = f.len() - L;
    let mut out = [0u8; L];
    let mut i = 0;
    while i < L {
        out[i] = f[skip + i];
        i += 1;
    }
    out
}

/// Panics with the [`StaticPanic`] message `fmt` with `args`: one copy of the
/// `core::panic!` call for every `fatal!`. The message names the operation, the
/// offset and the error; the panic location is this function's (not
/// `#[track_caller]`: a location per call site would add its file path and
/// line, about 300 B of flash in all).
#[cfg(all(feature = "panic-static", not(feature = "defmt")))]
#[cold]
#[inline(never)]
pub(crate) fn static_panic(fmt: &'static [u8], args: &[Arg<'_>]) -> ! {
    ::core::panic!("{}", StaticPanic { fmt, args })
}

/// One argument of a [`StaticPanic`] message.
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arg<'a> {
    /// An integer, printed as `0x` and lowercase hex digits.
    Int(u64),
    /// A string, printed as it is.
    Str(&'a str),
    /// Anything else (a medium's error, say), printed as `<error>`: its
    /// formatting would need `core::fmt`'s `Debug` machinery.
    Other,
}

/// A reference to an argument, so that method resolution picks [`PanicArg`]
/// (implemented for `PanicArgOf<&integer>` and `PanicArgOf<&&str>`, found at the
/// receiver `&PanicArgOf<_>`) before [`PanicArgOther`] (implemented for
/// `&PanicArgOf<T>`, found one autoref later).
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
pub(crate) struct PanicArgOf<T>(pub(crate) T);

/// The argument of an integer or a string.
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
pub(crate) trait PanicArg<'a> {
    fn panic_arg(&self) -> Arg<'a>;
}

#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
macro_rules! int_panic_arg {
    ($($t:ty),*) => {$(
        impl PanicArg<'static> for PanicArgOf<&$t> {
            fn panic_arg(&self) -> Arg<'static> {
                Arg::Int(*self.0 as u64)
            }
        }
    )*};
}
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
int_panic_arg!(u8, u16, u32, u64, usize);

#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
impl<'a> PanicArg<'a> for PanicArgOf<&&'a str> {
    fn panic_arg(&self) -> Arg<'a> {
        Arg::Str(self.0)
    }
}

/// The argument of any other type: [`Arg::Other`].
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
pub(crate) trait PanicArgOther {
    fn panic_arg(&self) -> Arg<'static> {
        Arg::Other
    }
}

#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
impl<T> PanicArgOther for &PanicArgOf<T> {}

/// A panic message without `core::fmt`'s number formatting: [`PREFIX`], then the
/// format string with each `{...}` replaced by the next argument (`{{` and `}}`
/// are braces).
#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
pub(crate) struct StaticPanic<'a> {
    /// The format string, ASCII.
    pub(crate) fmt: &'static [u8],
    pub(crate) args: &'a [Arg<'a>],
}

#[cfg(any(test, all(feature = "panic-static", not(feature = "defmt"))))]
impl core::fmt::Display for StaticPanic<'_> {
    // Byte by byte (the messages are ASCII), without `str` searching or slicing,
    // whose code and panic paths would cost more than this saves.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write as _;
        f.write_str(PREFIX)?;
        let mut args = self.args.iter();
        let mut bytes = self.fmt.iter().copied().peekable();
        while let Some(c) = bytes.next() {
            if (c == b'{' || c == b'}') && bytes.peek() == Some(&c) {
                // `{{` or `}}`.
                bytes.next();
            } else if c == b'{' {
                for c in bytes.by_ref() {
                    if c == b'}' {
                        break;
                    }
                }
                match args.next() {
                    Some(Arg::Int(v)) => {
                        f.write_str("0x")?;
                        let digits = (64 - v.leading_zeros()).max(1).div_ceil(4);
                        for k in (0..digits).rev() {
                            let d = (v >> (4 * k)) as u8 & 0xF;
                            f.write_char(if d < 10 { b'0' + d } else { b'a' + d - 10 } as char)?;
                        }
                    }
                    Some(Arg::Str(s)) => f.write_str(s)?,
                    Some(Arg::Other) | None => f.write_str("<error>")?,
                }
                continue;
            }
            f.write_char(c as char)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{unprefixed, unprefixed_len, Arg, PanicArg as _, PanicArgOf, PanicArgOther as _};
    use super::{StaticPanic, PREFIX};

    #[derive(Debug)]
    struct MediumError;

    fn render(fmt: &'static str, args: &[Arg<'_>]) -> std::string::String {
        std::format!(
            "{}",
            StaticPanic {
                fmt: fmt.as_bytes(),
                args
            }
        )
    }

    #[test]
    // The explicit `&` is the macro's form: it makes the `Other` case resolve.
    #[allow(clippy::needless_borrow)]
    fn i7_static_panic_names_operation_offset_and_error() {
        // I7: without core::fmt's number code the message still names the
        // operation, the offset (hex) and that the medium failed.
        let (len, off, e) = (16usize, 0x2_0040u32, MediumError);
        let args = [
            (&PanicArgOf(&len)).panic_arg(),
            (&PanicArgOf(&off)).panic_arg(),
            (&PanicArgOf(&e)).panic_arg(),
        ];
        assert_eq!(args, [Arg::Int(16), Arg::Int(0x2_0040), Arg::Other]);
        assert_eq!(
            render("program of {} B at offset {} failed: {:?}", &args),
            "monitor-events: program of 0x10 B at offset 0x20040 failed: <error>"
        );
        let what = "ack";
        let (id, zero, max) = (7u64, 0u8, u64::MAX);
        assert_eq!(
            render(
                "{} at offset {}: event {} {{{}}}",
                &[
                    (&PanicArgOf(&what)).panic_arg(),
                    (&PanicArgOf(&zero)).panic_arg(),
                    (&PanicArgOf(&id)).panic_arg(),
                    (&PanicArgOf(&max)).panic_arg()
                ]
            ),
            "monitor-events: ack at offset 0x0: event 0x7 {0xffffffffffffffff}"
        );
        // Fewer arguments than placeholders, a lone `}`, no placeholder.
        assert_eq!(render("a {} b } c", &[]), "monitor-events: a <error> b } c");
        assert_eq!(
            render("no free sector left", &[]),
            "monitor-events: no free sector left"
        );
    }

    #[test]
    fn i7_static_messages_are_stored_without_the_prefix() {
        // What `fatal!` stores for a static panic: the message less the prefix,
        // which `static_panic` prints in front of every message.
        const FMT: &str = "monitor-events: read of {} B at offset {} failed: {:?}";
        const MESSAGE: [u8; unprefixed_len(FMT)] = unprefixed(FMT);
        assert_eq!(&MESSAGE, b"read of {} B at offset {} failed: {:?}");
        assert_eq!(std::format!("{PREFIX}"), "monitor-events: ");
        const EMPTY: [u8; unprefixed_len(PREFIX)] = unprefixed(PREFIX);
        assert_eq!(EMPTY, [0u8; 0]);
    }

    #[test]
    #[should_panic(expected = "starts with the prefix")]
    fn a_message_without_the_prefix_is_refused() {
        // In `fatal!` this is a compile-time error (the call is in a `const`).
        let _ = core::hint::black_box(unprefixed_len)("program failed");
    }
}
