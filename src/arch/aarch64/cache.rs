//! Data cache maintenance by virtual address.

use aarch64_cpu::asm::barrier;

/// Cleans and invalidates `[start, start + len)` to the point of coherency,
/// so that an observer with its caches off (a CPU before its MMU is on)
/// reads what this CPU wrote.
pub fn clean_to_poc(start: usize, len: usize) {
    let line = 4usize << ((cache_type() >> 16) & 0xf);
    let mut address = start & !(line - 1);
    while address < start + len {
        // SAFETY: `dc civac` on a mapped address writes back and drops the
        // line; it changes no memory contents.
        unsafe {
            core::arch::asm!("dc civac, {}", in(reg) address, options(nostack));
        }
        address += line;
    }
    // The maintenance must complete before the caller signals the reader.
    barrier::dsb(barrier::SY);
}

/// CTR_EL0, whose DminLine field (bits [19:16]) is log2 of the smallest
/// data cache line in words; `aarch64-cpu` does not provide it.
fn cache_type() -> usize {
    let value: usize;
    // SAFETY: reading CTR_EL0 has no side effect; EL1 may always read it.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) value, options(nomem, nostack)) };
    value
}
