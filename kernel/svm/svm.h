/* SPDX-License-Identifier: GPL-2.0-only */
/* Declarations private to kvmpp-amd.ko. */
#ifndef KVMPP_SVM_H
#define KVMPP_SVM_H

#define KVMPP_SVM_LOG_PREFIX "kvmpp-amd: "

/* hardware.c: EFER.SVME and the host save area, per CPU. */
int svm_hardware_setup(void);
void svm_hardware_unsetup(void);
int svm_hardware_enable(void);
void svm_hardware_disable(void);

#endif /* KVMPP_SVM_H */
