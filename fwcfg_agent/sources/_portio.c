/*
 * fwcfg_agent.sources._portio: the x86 fw_cfg I/O ports, for the raw reader (raw.py).
 *
 * Only three things can be done with it: get permission for ports 0x510..0x51b (ioperm), write a
 * 16-bit key to the selector port 0x510, and read n bytes from the data port 0x511 (rep insb).
 * Nothing else is reachable from Python, so no other port can be touched through it. The protocol
 * logic, and every safety check about whether the device exists, lives in raw.py.
 *
 * ioperm() grants access to the calling thread only, so select/read refuse to run before
 * acquire() or in another thread: an unpermitted port access would kill the process (SIGSEGV).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if !defined(__linux__) || !(defined(__x86_64__) || defined(__i386__))
#error "_portio is for x86 Linux only"
#endif

#include <errno.h>
#include <sys/io.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FWCFG_SELECTOR 0x510
#define FWCFG_DATA 0x511
#define FWCFG_PORT_COUNT 12

/* The thread that holds the permission, or 0. Guarded by the GIL. */
static long holder_tid = 0;

static long current_tid(void) { return (long)syscall(SYS_gettid); }

static int check_held(void)
{
    if (holder_tid == 0) {
        PyErr_SetString(PyExc_RuntimeError, "fw_cfg ports not acquired (call acquire() first)");
        return -1;
    }
    if (holder_tid != current_tid()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "fw_cfg ports were acquired by another thread (ioperm is per thread)");
        return -1;
    }
    return 0;
}

static PyObject *portio_acquire(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (holder_tid != 0) {
        if (holder_tid == current_tid())
            Py_RETURN_NONE;
        PyErr_SetString(PyExc_RuntimeError, "fw_cfg ports are held by another thread");
        return NULL;
    }
    if (ioperm(FWCFG_SELECTOR, FWCFG_PORT_COUNT, 1) != 0)
        return PyErr_SetFromErrno(PyExc_OSError); /* EPERM becomes PermissionError */
    holder_tid = current_tid();
    Py_RETURN_NONE;
}

static PyObject *portio_release(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (holder_tid == 0)
        Py_RETURN_NONE;
    if (holder_tid != current_tid()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "fw_cfg ports were acquired by another thread (ioperm is per thread)");
        return NULL;
    }
    holder_tid = 0;
    if (ioperm(FWCFG_SELECTOR, FWCFG_PORT_COUNT, 0) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *portio_held(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyBool_FromLong(holder_tid != 0 && holder_tid == current_tid());
}

static PyObject *portio_select(PyObject *self, PyObject *arg)
{
    (void)self;
    unsigned long key = PyLong_AsUnsignedLong(arg);
    if (key == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (key > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "fw_cfg key %lu does not fit in 16 bits", key);
        return NULL;
    }
    if (check_held() < 0)
        return NULL;
    outw((unsigned short)key, FWCFG_SELECTOR); /* one 16-bit write: a byte write selects nothing */
    Py_RETURN_NONE;
}

static PyObject *portio_read(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "negative read size");
        return NULL;
    }
    if (check_held() < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL)
        return NULL;
    unsigned char *buf = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    /* rep insb: n byte reads of the data port, one VM exit per batch under KVM. */
    if (n > 0)
        insb(FWCFG_DATA, buf, (unsigned long)n);
    Py_END_ALLOW_THREADS
    return out;
}

static PyMethodDef portio_methods[] = {
    {"acquire", portio_acquire, METH_NOARGS,
     "acquire()\n\nioperm(0x510, 12, 1) for this thread. OSError (PermissionError) if refused."},
    {"release", portio_release, METH_NOARGS, "release()\n\nioperm(0x510, 12, 0)."},
    {"held", portio_held, METH_NOARGS, "held() -> bool\n\nThis thread holds the ports."},
    {"select", portio_select, METH_O,
     "select(key)\n\nOne 16-bit write of key to the selector port 0x510."},
    {"read", portio_read, METH_O,
     "read(n) -> bytes\n\nn sequential byte reads of the data port 0x511 (rep insb)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef portio_module = {
    PyModuleDef_HEAD_INIT,
    "_portio",
    "The x86 fw_cfg I/O ports (selector 0x510, data 0x511) for the raw reader.",
    -1,
    portio_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__portio(void)
{
    PyObject *m = PyModule_Create(&portio_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "SELECTOR_PORT", FWCFG_SELECTOR) < 0 ||
        PyModule_AddIntConstant(m, "DATA_PORT", FWCFG_DATA) < 0 ||
        PyModule_AddIntConstant(m, "PORT_COUNT", FWCFG_PORT_COUNT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
