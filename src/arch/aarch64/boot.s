// Entry points of the kernel image: the boot CPU's and the secondaries'.
//
// Both run with the MMU off, so nothing here touches memory that another
// CPU wrote through its cache without a clean to the point of coherency.
// Registers kept across calls in this file: x19-x21 (callee-saved in the
// AAPCS64, and the helpers below use only x0-x9).

.section .text.boot, "ax"

// ---------------------------------------------------------------------------
// arm64 Image header (Linux Documentation/arch/arm64/booting.rst layout).
// QEMU and the Raspberry Pi firmware recognise the magic and then pass the
// device tree's physical address in x0.
// ---------------------------------------------------------------------------
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x80000                 // text_offset from the 2 MiB RAM base
    .quad   __image_size            // image_size, .bss included
    .quad   0x2                     // flags: little endian, 4 KiB pages
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

// The boot CPU: x0 = device tree address (or 0 / ATAGs when there is none).
primary_entry:
    mov     x19, x0
    bl      drop_to_el1
    msr     tpidr_el1, xzr          // logical CPU id 0 (see arch::cpu::id)

    // Clear .bss before any Rust code sees its statics.
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:
    // Boot page table: 1 GiB blocks, the kernel's GiB as normal memory,
    // the rest of the first 4 GiB as device memory. It serves only until
    // Rust has read the device tree and built the real map.
    adrp    x0, BOOT_L1_TABLE
    add     x0, x0, :lo12:BOOT_L1_TABLE
    mov     x1, #0
    ldr     x2, =BOOT_DEVICE_BLOCK
3:  orr     x3, x2, x1, lsl #30
    str     x3, [x0, x1, lsl #3]
    add     x1, x1, #1
    cmp     x1, #4
    b.lo    3b
    adrp    x1, _start
    lsr     x1, x1, #30
    ldr     x2, =BOOT_NORMAL_BLOCK
    orr     x3, x2, x1, lsl #30
    str     x3, [x0, x1, lsl #3]

    mov     x1, #0                  // no extra SCTLR_EL1 bits yet
    bl      enable_mmu

    // Stack of CPU 0: the top of its boot stack slot.
    adrp    x0, BOOT_STACKS
    add     x0, x0, :lo12:BOOT_STACKS
    mov     x1, #{STACK_SIZE}
    add     sp, x0, x1
    mov     x29, #0
    mov     x0, x19
    bl      primary_main
    b       park

// A secondary CPU, started by PSCI CPU_ON or released from the spin table.
// Its identity, stack and translation table come from SECONDARY_BOOT, which
// the starting CPU filled in and cleaned to the point of coherency.
.global secondary_entry
secondary_entry:
    bl      drop_to_el1
    adrp    x9, SECONDARY_BOOT
    add     x9, x9, :lo12:SECONDARY_BOOT
    ldr     x19, [x9, #0]           // logical CPU id
    msr     tpidr_el1, x19
    ldr     x20, [x9, #8]           // stack top
    ldr     x0, [x9, #16]           // TTBR0_EL1
    ldr     x1, [x9, #24]           // extra SCTLR_EL1 bits (WXN)
    bl      enable_mmu
    mov     sp, x20
    mov     x29, #0
    mov     x0, x19
    bl      secondary_main
    b       park

// ---------------------------------------------------------------------------
// drop_to_el1: return at EL1h with all exceptions masked.
// Entered at EL2 on the Raspberry Pi 4 (firmware and QEMU) and on virt with
// virtualization=on; at EL1 on plain virt. EL3 is not supported.
// Clobbers x0-x1.
// ---------------------------------------------------------------------------
drop_to_el1:
    mrs     x0, CurrentEL
    ubfx    x0, x0, #2, #2
    cmp     x0, #1
    b.eq    in_el1
    cmp     x0, #2
    b.ne    park

    // EL1 runs AArch64; no stage-2 translation, no traps to EL2.
    mov     x0, #(1 << 31)          // HCR_EL2.RW
    msr     hcr_el2, x0
    // EL1 may read the counter and use the EL1 timers.
    mov     x0, #3                  // CNTHCTL_EL2.EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    // No trapping of FP/SIMD or system registers to EL2 (CPTR_EL2 RES1 bits).
    mov     x0, #0x33ff
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    // EL1 reads of MIDR/MPIDR return these; their reset values are UNKNOWN.
    mrs     x0, midr_el1
    msr     vpidr_el2, x0
    mrs     x0, mpidr_el1
    msr     vmpidr_el2, x0
    // With a GICv3 CPU interface, let EL1 use its system registers.
    mrs     x0, id_aa64pfr0_el1
    ubfx    x0, x0, #24, #4
    cbz     x0, 1f
    mrs     x0, S3_4_C12_C9_5       // ICC_SRE_EL2
    orr     x0, x0, #0xf            // SRE | DFB | DIB | Enable
    msr     S3_4_C12_C9_5, x0
    isb
1:  ldr     x0, =SCTLR_EL1_RESET
    msr     sctlr_el1, x0
    mov     x0, #0x3c5              // EL1h, D, A, I, F masked
    msr     spsr_el2, x0
    adr     x0, in_el1
    msr     elr_el2, x0
    eret

in_el1:
    // FP/SIMD stays trapped (CPACR_EL1.FPEN = 0): the kernel is soft-float,
    // so any FP/SIMD instruction is a bug and is reported as one.
    msr     cpacr_el1, xzr
    msr     daifset, #0xf
    isb
    ret

// ---------------------------------------------------------------------------
// enable_mmu(x0 = TTBR0_EL1, x1 = extra SCTLR_EL1 bits): MAIR, TCR, TTBR0,
// then translation and both caches on. Clobbers x0-x3.
// ---------------------------------------------------------------------------
.global enable_mmu
enable_mmu:
    ldr     x2, =MAIR_VALUE
    msr     mair_el1, x2
    // The physical address size is what this CPU implements.
    mrs     x2, id_aa64mmfr0_el1
    and     x2, x2, #0x7
    lsl     x2, x2, #32             // TCR_EL1.IPS
    ldr     x3, =TCR_VALUE
    orr     x2, x2, x3
    msr     tcr_el1, x2
    msr     ttbr0_el1, x0
    // The table writes and register writes must be complete before the
    // first walk; stale TLB entries from firmware must be gone.
    dsb     sy
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    mrs     x2, sctlr_el1
    ldr     x3, =SCTLR_MMU_ON
    orr     x2, x2, x3
    orr     x2, x2, x1
    msr     sctlr_el1, x2
    isb
    ret

.global park
park:
    msr     daifset, #0xf
1:  wfe
    b       1b
