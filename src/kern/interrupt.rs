//! Interrupt dispatch: the controller, the SGIs the kernel sends itself,
//! and the IRQ handler every CPU runs.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Once;

use crate::arch::cpu;
use crate::config::MAX_CPUS;
use crate::drivers::gic::InterruptController;

/// SGI: "reschedule": a thread was queued here that should run now.
pub const SGI_WAKE: u32 = 0;
/// SGI: "stop" (a panic elsewhere).
pub const SGI_STOP: u32 = 1;
/// SGI: "reach your kernel boundary": the interrupt's return to payload
/// code is one (`sched::ast`).
pub const SGI_AST: u32 = 2;

static CONTROLLER: Once<InterruptController> = Once::new();
/// The timer's interrupt id, from the machine description.
static TIMER_INTID: Once<u32> = Once::new();
/// Per CPU: interrupts handled. Written by its CPU, read by anyone.
static HANDLED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Sets up the controller on the boot CPU.
pub fn init(controller: InterruptController, timer_intid: u32) {
    let controller = CONTROLLER.call_once(|| controller);
    TIMER_INTID.call_once(|| timer_intid);
    controller.init_distributor();
}

/// The controller.
///
/// # Panics
/// Before [`init`]: boot runs it before any CPU takes interrupts.
pub fn controller() -> &'static InterruptController {
    CONTROLLER
        .get()
        .expect("interrupt controller set up at boot")
}

/// This CPU's interrupts: the controller's CPU interface, the two SGIs
/// and the timer. IRQs stay masked; the caller unmasks them.
pub fn init_cpu(cpu: usize) {
    let controller = controller();
    controller.init_cpu(cpu);
    controller.enable_private(cpu, SGI_WAKE);
    controller.enable_private(cpu, SGI_STOP);
    controller.enable_private(cpu, SGI_AST);
    controller.enable_private(cpu, *TIMER_INTID.get().expect("set with the controller"));
}

/// Sends `sgi` to `cpu`.
pub fn send_sgi(cpu: usize, sgi: u32) {
    controller().send_sgi(cpu, sgi);
}

/// Interrupts handled by `cpu` so far.
pub fn handled(cpu: usize) -> u64 {
    HANDLED[cpu].load(Ordering::Relaxed)
}

/// The IRQ exception: acknowledge, dispatch and end each pending
/// interrupt until none is left.
pub fn handle_irq() {
    let this = cpu::id();
    let controller = controller();
    let timer = *TIMER_INTID.get().expect("set with the controller");
    while let Some((intid, raw)) = controller.acknowledge() {
        HANDLED[this].fetch_add(1, Ordering::Relaxed);
        match intid {
            SGI_WAKE => crate::sched::scheduler::set_need_resched(),
            SGI_AST => {}
            SGI_STOP => {
                controller.end_of_interrupt(raw);
                super::panic::stop_this_cpu();
            }
            id if id == timer => super::clock::handle_tick(this),
            other => log::warn!("unexpected interrupt {other}"),
        }
        controller.end_of_interrupt(raw);
    }
    // Every interrupt is ended: now a switch may happen, on this stack,
    // and if the interrupt came from payload code, this is a boundary.
    crate::sched::scheduler::preempt_if_needed();
    crate::sched::ast::on_interrupt_return();
}
