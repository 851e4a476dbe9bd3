import { fileStoreFactory, memoryStoreFactory } from "./fixtures.js";
import { runReplicaStoreContract } from "./replica-store-contract.js";

runReplicaStoreContract("file store", fileStoreFactory);
runReplicaStoreContract("memory store", memoryStoreFactory);
