//! Stack high-water marks: paint the free stack below the stack pointer with a
//! pattern, run an operation, and find the lowest word it overwrote.
//!
//! Memory layout (cortex-m-rt's `link.x`, no flip-link): `.data`, `.bss` and
//! `.uninit` sit at the start of RAM and end at `_stack_end`; the stack starts at
//! `_stack_start`, the end of RAM, and grows down toward `_stack_end`. The free
//! stack is therefore `[_stack_end, sp)`, and the paint covers at most [`WINDOW`]
//! bytes of it, directly below the stack pointer of [`measure`], never below
//! `_stack_end`: no static is ever touched.
//!
//! What it cannot see: stack an operation reserves but never writes (the
//! figure is the deepest *written* word), and a word the operation happens to
//! write with the pattern's exact value at the very bottom of its use (then the
//! figure is 4 B short).
//!
//! This module holds all the `unsafe` of the measurement (reading the stack
//! pointer, the linker symbol and writing the free stack); the crate denies
//! `unsafe` everywhere else.

#![allow(unsafe_code)]

/// The paint: a word no pointer into RAM or flash and no small integer equals.
const PAINT: u32 = 0xDEAD_BEEF;

/// The most bytes painted below the stack pointer: a figure this large means the
/// operation used the whole window (or more) and the window must grow.
pub const WINDOW: usize = 16 * 1024;

extern "C" {
    /// cortex-m-rt's end of `.bss`/`.uninit`, the lowest address the stack may
    /// reach (`link.x`: `PROVIDE(_stack_end = .)` after `.uninit`).
    static _stack_end: u32;
}

/// What one measurement found.
#[derive(Clone, Copy, defmt::Format)]
pub struct HighWater {
    /// Bytes below the caller's stack pointer the operation wrote.
    pub bytes: usize,
    /// Bytes painted: `bytes == window` means the operation went below the paint.
    pub window: usize,
}

impl HighWater {
    /// Whether the operation may have used more stack than was painted.
    pub fn saturated(&self) -> bool {
        self.bytes >= self.window
    }
}

/// The stack pointer now.
#[inline(always)]
fn sp() -> usize {
    let sp: usize;
    // SAFETY: copies a register; no memory access, no stack use, flags kept.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}

/// The lowest address the stack may use (`_stack_end`).
fn stack_end() -> usize {
    // Only the symbol's address is taken (safe for an extern static); nothing
    // is read through it.
    core::ptr::addr_of!(_stack_end) as usize
}

/// Runs `op` and returns its result with the stack it used below this
/// function's frame: the stack `op` needs when called from here, plus the few
/// bytes of the indirect call itself. `op` is called through `black_box` so
/// that link-time optimisation cannot inline it into this frame, whose
/// stack lies above the painted window and would go unseen.
///
/// No interrupts are enabled in this firmware; an exception taken during `op`
/// would push its frame below the stack pointer and be counted as `op`'s use.
#[inline(never)]
pub fn measure<R>(op: &mut dyn FnMut() -> R) -> (R, HighWater) {
    let top = sp() & !3;
    let bottom = (top.saturating_sub(WINDOW).max(stack_end()) + 3) & !3;
    // Painting and scanning are loops of volatile accesses with no calls: they
    // use no stack below `top` (their spills live in this function's frame,
    // reserved above `top` by the prologue).
    let mut at = bottom;
    while at < top {
        // SAFETY: `[bottom, top)` is word-aligned free stack: at or above
        // `_stack_end` (no static lives there) and below the stack pointer (no
        // live frame lives there; the AAPCS lets nothing rely on memory below sp).
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
    let op = core::hint::black_box(op);
    let result = op();
    let mut at = bottom;
    // SAFETY: the same word-aligned free stack as above, now below the stack
    // pointer again since `op` returned; reading it disturbs nothing.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    (
        result,
        HighWater {
            bytes: top - at,
            window: top - bottom,
        },
    )
}
