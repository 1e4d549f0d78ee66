export * from './token-cipher';
export * from './token-vault';
