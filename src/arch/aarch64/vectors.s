// Exception vector table (Arm ARM D1.10.2): four groups of four entries,
// 0x80 bytes each. The kernel runs at EL1 with SP_EL1 (EL1h) only, so the
// "current EL with SPx" group does the work; the others report the
// unexpected exception.
//
// Every entry saves a TrapFrame (arch::aarch64::exception) on the current
// stack and calls the Rust handler with its address in x0.

.equ FRAME_SIZE, 288

.macro ENTRY handler, kind
.balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    str     x30, [sp, #240]
    mov     x1, #\kind
    b       \handler
.endm

.section .text
.balign 0x800
.global exception_vectors
exception_vectors:
    // Current EL with SP_EL0: never used by the kernel.
    ENTRY   trap_unexpected, 0
    ENTRY   trap_unexpected, 1
    ENTRY   trap_unexpected, 2
    ENTRY   trap_unexpected, 3
    // Current EL with SP_ELx.
    ENTRY   trap_sync, 4
    ENTRY   trap_irq, 5
    ENTRY   trap_unexpected, 6
    ENTRY   trap_unexpected, 7
    // Lower EL, AArch64 and AArch32: nothing runs below EL1.
    ENTRY   trap_unexpected, 8
    ENTRY   trap_unexpected, 9
    ENTRY   trap_unexpected, 10
    ENTRY   trap_unexpected, 11
    ENTRY   trap_unexpected, 12
    ENTRY   trap_unexpected, 13
    ENTRY   trap_unexpected, 14
    ENTRY   trap_unexpected, 15

// Saves x2-x29, ELR, SPSR, ESR, FAR and the interrupted SP; x0, x1 and
// x30 are already saved and x1 holds the vector number. Leaves x0 = frame,
// x1 = vector number.
save_frame:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    str     x2, [sp, #248]
    mrs     x2, spsr_el1
    mrs     x3, esr_el1
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el1
    add     x3, sp, #FRAME_SIZE
    stp     x2, x3, [sp, #272]
    mov     x0, sp
    ret

trap_sync:
    bl      save_frame
    bl      handle_sync
    b       exception_return

trap_irq:
    bl      save_frame
    bl      handle_irq
    b       exception_return

trap_unexpected:
    bl      save_frame
    bl      handle_unexpected
    b       exception_return

// Restores the frame at sp (possibly edited by the handler) and returns
// from the exception.
.global exception_return
exception_return:
    ldp     x2, x3, [sp, #248]      // ELR, SPSR
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #FRAME_SIZE
    eret
