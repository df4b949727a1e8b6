#ifndef MLC_VERSION_H
#define MLC_VERSION_H
#define MLC_VERSION "0.1.0"
#endif
