//! Splitting buffers at computed offsets without a panic location per call.
//!
//! `split_at` panics out of range with its caller's location (`#[track_caller]`),
//! and range indexing formats the numbers with `core::fmt`: either keeps a
//! source path, or number code, in the firmware for every place that slices.
//! The engine's offsets are computed within their buffers, so a failure here is
//! a bug of the library: it is reported by one shared panic that names it.

/// `(&b[..n], &b[n..])`.
///
/// # Panics
/// If `n > b.len()`.
pub(crate) fn split(b: &[u8], n: usize) -> (&[u8], &[u8]) {
    match b.split_at_checked(n) {
        Some(halves) => halves,
        None => out_of_range(),
    }
}

/// `(&mut b[..n], &mut b[n..])`.
///
/// # Panics
/// If `n > b.len()`.
pub(crate) fn split_mut(b: &mut [u8], n: usize) -> (&mut [u8], &mut [u8]) {
    match b.split_at_mut_checked(n) {
        Some(halves) => halves,
        None => out_of_range(),
    }
}

#[cold]
#[inline(never)]
fn out_of_range() -> ! {
    fatal!("monitor-events: a buffer was split beyond its end (a bug of the library)")
}

#[cfg(test)]
mod tests {
    use super::{split, split_mut};

    #[test]
    fn splits_like_split_at() {
        let b = [1u8, 2, 3, 4];
        for n in 0..=b.len() {
            assert_eq!(split(&b, n), b.split_at(n));
            let mut m = b;
            let mut want = b;
            assert_eq!(split_mut(&mut m, n), want.split_at_mut(n));
        }
    }

    #[test]
    #[should_panic(expected = "monitor-events: a buffer was split beyond its end")]
    fn splitting_beyond_the_end_panics_with_the_library_message() {
        let b = [0u8; 4];
        let _ = split(core::hint::black_box(&b), core::hint::black_box(5));
    }

    #[test]
    #[should_panic(expected = "monitor-events: a buffer was split beyond its end")]
    fn splitting_a_mutable_buffer_beyond_its_end_panics_too() {
        let mut b = [0u8; 4];
        let _ = split_mut(core::hint::black_box(&mut b), core::hint::black_box(5));
    }
}
