# The slice of OpenSSL's libcrypto (the library hashlib also uses) that the signing hot path needs.
#
# SHA256_Init/Update/Final and SHA256_CTX are deprecated in OpenSSL 3 but still exported, and they are
# the fastest way to resume a precomputed HMAC state: resuming is a 112-byte struct copy, where
# EVP_MD_CTX_copy_ex goes through the provider layer (about 200 ns more per HMAC, measured). Defining
# OPENSSL_SUPPRESS_DEPRECATED before the first OpenSSL header silences the deprecation warnings
# without a compiler flag.

cdef extern from *:
    """
    #ifndef OPENSSL_SUPPRESS_DEPRECATED
    #define OPENSSL_SUPPRESS_DEPRECATED
    #endif
    """

cdef extern from "openssl/sha.h" nogil:
    enum:
        SHA256_CBLOCK
        SHA256_DIGEST_LENGTH

    ctypedef struct SHA256_CTX:
        pass

    int SHA256_Init(SHA256_CTX *context)
    int SHA256_Update(SHA256_CTX *context, const void *data, size_t length)
    int SHA256_Final(unsigned char *digest, SHA256_CTX *context)

cdef extern from "openssl/crypto.h" nogil:
    int CRYPTO_memcmp(const void *a, const void *b, size_t length)
    void OPENSSL_cleanse(void *pointer, size_t length)
