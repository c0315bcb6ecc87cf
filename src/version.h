#define M2D_VERSION "0.1.0"
