/* The XDP object, embedded so ferryd needs no file to find at run time. */
	.section .rodata
	.global ferryd_bpf_obj
	.global ferryd_bpf_obj_end
	.balign 8
ferryd_bpf_obj:
	.incbin FERRY_BPF_OBJ
ferryd_bpf_obj_end:
	.section .note.GNU-stack,"",@progbits
