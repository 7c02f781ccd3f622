/*
 * Entry stubs for vectors 32-255 (device interrupts, the spurious vector).
 * Each stub is 16 bytes (so `cpu.rs` finds stub n at irq_stubs + 16*(n-32)),
 * pushes its vector and jumps to a common path that saves the registers the
 * System V ABI lets a call clobber, calls `irq_dispatch(vector)` on a
 * 16-byte aligned stack and returns with `iretq`. The kernel is built
 * without SSE (x86_64-unknown-none: soft-float), so no vector register
 * needs saving, and without a red zone, so the interrupted code keeps no
 * data below its stack pointer.
 */
    .section .text
    .balign 16
    .global irq_stubs
irq_stubs:
    .set irq_vec, 32
    .rept 224
    .balign 16
    push $irq_vec
    jmp irq_common
    .set irq_vec, irq_vec + 1
    .endr

irq_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    push %rbx
    mov 80(%rsp), %rdi
    mov %rsp, %rbx
    and $-16, %rsp
    cld
    call irq_dispatch
    mov %rbx, %rsp
    pop %rbx
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $8, %rsp
    iretq
