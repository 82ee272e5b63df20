// The keystore decoder (scrypt, AES-CTR) in its own chunk, loaded on demand.
export { Wallet } from "ethers";
